// The wrapper on the GGUF files named by FSGEN_TEST_SMALL and FSGEN_TEST_LARGE (required).
use fsgen::{Options, Pair, Prompt, Source};

fn models() -> (String, String) {
    let get = |name: &str| std::env::var(name).unwrap_or_else(|_| panic!("set {name} to a GGUF file"));
    (get("FSGEN_TEST_SMALL"), get("FSGEN_TEST_LARGE"))
}

fn pair() -> Pair {
    let (small, large) = models();
    let mut options = Options::model();
    options.set_int("n_ctx", 512).unwrap();
    Pair::new(&small, &large, &options).expect("load the pair")
}

fn fs_options(max_tokens: i64) -> Options {
    let mut o = Options::generate();
    o.set_str("method", "fs").unwrap().set_int("max_tokens", max_tokens).unwrap();
    o
}

#[test]
fn version_matches() {
    assert_eq!(fsgen::api_version(), 10000);
}

#[test]
fn generate_reports_text_sources_and_stats() {
    let pair = pair();
    let mut o = fs_options(16);
    o.set_bool("trace", true).unwrap().set_uint("seed", u64::MAX).unwrap();
    let mut pieces = Vec::new();
    let out = pair.generate_with(&Prompt::Text("hello".into()), &o, |p| {
        pieces.extend(p.bytes);
        true
    })
    .unwrap();
    assert_eq!(out.finish_reason(), "length");
    assert_eq!(out.tokens().len(), 16);
    assert_eq!(out.sources().len(), 16);
    assert_eq!(out.stat("n_tokens").unwrap(), 16.0);
    assert_eq!(String::from_utf8_lossy(&pieces), out.text());
}

#[test]
fn stream_yields_the_text() {
    let pair = pair();
    let mut stream = pair.stream(&Prompt::user("hello"), &fs_options(24)).unwrap();
    let mut bytes = Vec::new();
    let mut sources = Vec::new();
    for piece in &mut stream {
        let piece = piece.unwrap();
        bytes.extend(piece.bytes);
        sources.push(piece.source);
    }
    let out = stream.result().unwrap();
    assert_eq!(String::from_utf8_lossy(&bytes), out.text());
    assert!(sources.iter().all(|s| matches!(s, Source::System1 | Source::System2 | Source::Combined)));
}

#[test]
fn callback_stops_and_stream_cancels() {
    let pair = pair();
    let out = pair.generate_with(&Prompt::Text("hello".into()), &fs_options(100), |_| false).unwrap();
    assert_eq!(out.finish_reason(), "cancelled");
    let mut stream = pair.stream(&Prompt::Text("hello".into()), &fs_options(100)).unwrap();
    assert!(stream.next().unwrap().is_ok());
    std::thread::scope(|s| {
        s.spawn(|| stream.cancel());
    });
    for piece in &mut stream {
        piece.unwrap();
    }
    assert_eq!(stream.result().unwrap().finish_reason(), "cancelled");
}

#[test]
fn errors_carry_status_and_message() {
    let e = Pair::new("/no/such/small.gguf", "/no/such/large.gguf", &Options::model()).err().unwrap();
    assert_eq!(e.status_name(), "FSGEN_ERR_MODEL_LOAD");
    let pair = pair();
    let mut o = fs_options(4);
    o.set_float("temprature", 0.5).unwrap();
    let e = pair.generate(&Prompt::Text("hello".into()), &o).err().unwrap();
    assert_eq!(e.status_name(), "FSGEN_ERR_INVALID_ARGUMENT");
    assert!(e.message.contains("unknown parameter \"temprature\""), "{}", e.message);
}
