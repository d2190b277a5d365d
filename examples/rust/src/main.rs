//! fs decoding from Rust: System 1 writes, System 2 steps in where System 1 is unsure; System 2's
//! pieces are bracketed.
//!
//!   fsgen-fs SMALL.gguf LARGE.gguf ["prompt"] [max_tokens]
use std::io::Write;

fn run(args: &[String]) -> fsgen::Result<()> {
    let mut model_options = fsgen::Options::model();
    model_options.set_int("n_ctx", 1024)?;
    let pair = fsgen::Pair::new(&args[1], &args[2], &model_options)?;
    let mut options = fsgen::Options::generate();
    options.set_str("method", "fs")?.set_str("router", "entropy")?;
    options.set_int("max_tokens", args.get(4).and_then(|n| n.parse().ok()).unwrap_or(64))?;
    let prompt = fsgen::Prompt::user(args.get(3).map_or("Write a haiku about fast and slow thinking.", |s| s.as_str()));

    let mut stream = pair.stream(&prompt, &options)?;
    let mut out = std::io::stdout();
    for piece in &mut stream {
        let piece = piece?;
        let slow = piece.source != fsgen::Source::System1;
        let _ = out.write_all(if slow { b"[" } else { b"" });
        let _ = out.write_all(&piece.bytes);
        let _ = out.write_all(if slow { b"]" } else { b"" });
        let _ = out.flush();
    }
    let result = stream.result()?;
    println!(
        "\n{} tokens, {:.1} tokens/s, System 2 wrote {:.1}%, finish: {}",
        result.stat("n_tokens")?,
        result.stat("tokens_per_second")?,
        100.0 * result.stat("system2_fraction")?,
        result.finish_reason()
    );
    Ok(())
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 3 {
        eprintln!("usage: {} SMALL.gguf LARGE.gguf [prompt] [max_tokens]", args[0]);
        std::process::exit(2);
    }
    if let Err(e) = run(&args) {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}
