// fsgen's chat page: talks to this server's own OpenAI endpoints, streams the reply, and colours
// each piece by who wrote it (delta.fsgen_source: 0 System 1, 1 System 2, 2 both combined).
"use strict";
const $ = (id) => document.getElementById(id);
const LEGENDS = {
  speculative: [[0, "accepted draft (System 1)"], [1, "written or corrected by System 2"]],
  fs: [[0, "System 1 (small)"], [1, "System 2 (large)"], [2, "System 2 combined with System 1"]],
  small: [[0, "System 1 (small)"]],
  large: [[1, "System 2 (large)"]],
  contrastive: [[2, "combined: contrastive"]],
  proxy: [[2, "combined: proxy tuning"]],
  model: [[0, "the model"]],
};
LEGENDS.oracle = LEGENDS.fs;
const history = [];
let controller = null;

function headers() {
  const h = { "Content-Type": "application/json" };
  const key = $("api-key").value.trim() || localStorage.getItem("fsgen-key") || "";
  if (key) h.Authorization = "Bearer " + key;
  return h;
}

function showLegend() {
  const method = $("method").value;
  const items = LEGENDS[method] || LEGENDS.fs;
  $("legend").replaceChildren(...items.map(([src, label]) => {
    const span = document.createElement("span");
    const chip = document.createElement("span");
    chip.className = "chip src" + src;
    chip.textContent = "abc";
    span.append(chip, label);
    return span;
  }));
}

async function loadModels() {
  try {
    const r = await fetch("/v1/models", { headers: headers() });
    const body = await r.json();
    if (!r.ok) throw new Error(body.error ? body.error.message : r.statusText);
    const m = body.data[0];
    $("model").textContent = m.id;
    // The id stays the text (requests send it back); a translated pair says so in the tooltip.
    const vocab = m.fsgen.vocab;
    $("model").title = m.id + (vocab && vocab.kind === "translated"
      ? " (the two models do not share a tokenizer: they meet in text)" : "");
    $("method").replaceChildren(...m.fsgen.methods.map((name) => new Option(name, name, false,
      name === m.fsgen.default_method)));
  } catch (e) {
    $("model").textContent = "(" + e.message + ")";
  }
  showLegend();
}

function addMessage(role, text) {
  $("empty")?.remove();
  const div = document.createElement("div");
  div.className = "msg " + role;
  const who = document.createElement("div");
  who.className = "who";
  who.textContent = role === "user" ? "you" : role === "assistant" ? "fsgen · " + $("method").value : role;
  const body = document.createElement("div");
  body.className = "body";
  if (text) body.textContent = text;
  const meta = document.createElement("div");
  meta.className = "meta";
  div.append(who, body, meta);
  $("log").append(div);
  div.scrollIntoView({ block: "end" });
  return { div, body, meta };
}

function statsLine(s) {
  const parts = [`${s.tokens} tokens`];
  if (s.tps !== null) parts.push(`${s.tps.toFixed(1)} tokens/s`);
  if (s.tokens) parts.push(`System 2 ${(100 * s.system2 / s.tokens).toFixed(0)}%`);
  if (s.draftN) parts.push(`drafts accepted ${(100 * s.draftAccepted / s.draftN).toFixed(0)}%`);
  if (s.finish) parts.push(`finish: ${s.finish}`);
  return parts.join(" · ");
}

async function send(text) {
  history.push({ role: "user", content: text });
  addMessage("user", text);
  const out = addMessage("assistant", "");
  out.body.classList.add("cursor");
  const method = $("method").value;
  const request = {
    model: $("model").textContent, messages: history, stream: true,
    temperature: Number($("temperature").value), max_tokens: Number($("max-tokens").value),
  };
  if (method && method !== "model") request.method = method;
  const s = { tokens: 0, system2: 0, tps: null, draftN: 0, draftAccepted: 0, finish: null };
  let started = null, reply = "";
  controller = new AbortController();
  setBusy(true);
  try {
    const r = await fetch("/v1/chat/completions", { method: "POST", headers: headers(),
      body: JSON.stringify(request), signal: controller.signal });
    if (!r.ok) {
      const body = await r.json().catch(() => ({}));
      throw new Error(body.error ? body.error.message : `HTTP ${r.status}`);
    }
    const reader = r.body.getReader();
    const decoder = new TextDecoder();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, { stream: true });
      let cut;
      while ((cut = buffer.indexOf("\n\n")) >= 0) {
        const event = buffer.slice(0, cut);
        buffer = buffer.slice(cut + 2);
        for (const line of event.split("\n")) {
          if (!line.startsWith("data: ")) continue;
          const data = line.slice(6);
          if (data === "[DONE]") continue;
          const chunk = JSON.parse(data);
          if (chunk.error) throw new Error(chunk.error.message);
          if (chunk.timings) {
            const t = chunk.timings;
            s.tokens = t.predicted_n; s.tps = t.predicted_per_second;
            s.system2 = Math.round(t.system2_fraction * t.predicted_n);
            s.draftN = t.draft_n; s.draftAccepted = t.draft_n_accepted;
          }
          const choice = chunk.choices && chunk.choices[0];
          if (!choice) continue;
          if (choice.finish_reason) s.finish = choice.finish_reason;
          const d = choice.delta || {};
          if (typeof d.content === "string" && d.content && d.fsgen_source !== undefined) {
            const piece = document.createElement("span");
            piece.className = "piece src" + d.fsgen_source;
            piece.dataset.source = d.fsgen_source;
            if (d.fsgen_draft) piece.dataset.draft = d.fsgen_draft;
            piece.textContent = d.content;
            out.body.append(piece);
            reply += d.content;
            const now = performance.now();
            if (started === null) started = now;
            s.tokens += 1;
            if (d.fsgen_source !== 0) s.system2 += 1;
            if (now > started) s.tps = (s.tokens - 1) / ((now - started) / 1000);
            $("stats").textContent = statsLine(s);
            out.div.scrollIntoView({ block: "end" });
          }
        }
      }
    }
    history.push({ role: "assistant", content: reply });
  } catch (e) {
    if (e.name === "AbortError") {
      s.finish = "stopped";
      history.push({ role: "assistant", content: reply });
    } else {
      out.div.classList.add("error");
      out.body.append(document.createTextNode((reply ? "\n" : "") + e.message));
      history.pop();
    }
  } finally {
    out.body.classList.remove("cursor");
    out.meta.textContent = statsLine(s);
    $("stats").textContent = "ready";
    controller = null;
    setBusy(false);
  }
}

function setBusy(busy) {
  $("send").disabled = busy;
  $("stop").disabled = !busy;
  document.body.dataset.busy = busy ? "1" : "0";
}

$("form").addEventListener("submit", (e) => {
  e.preventDefault();
  const text = $("prompt").value.trim();
  if (!text || controller) return;
  $("prompt").value = "";
  send(text);
});
$("prompt").addEventListener("keydown", (e) => {
  if (e.key === "Enter" && !e.shiftKey) { e.preventDefault(); $("form").requestSubmit(); }
});
$("stop").addEventListener("click", () => controller && controller.abort());
$("clear").addEventListener("click", () => { history.length = 0; $("log").replaceChildren(); $("stats").textContent = "ready"; });
$("method").addEventListener("change", showLegend);
$("api-key").addEventListener("change", () => { localStorage.setItem("fsgen-key", $("api-key").value.trim()); loadModels(); });
setBusy(false);
loadModels();
