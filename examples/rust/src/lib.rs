//! A safe wrapper over fsgen's C API (libfsgen, `fsgen.h`): a small and a large model decoding
//! together. Handles free themselves (`Drop`); errors carry the C status and its message.
//!
//! ```no_run
//! let pair = fsgen::Pair::new("small.gguf", "large.gguf", &fsgen::Options::model())?;
//! let mut options = fsgen::Options::generate();
//! options.set_str("method", "fs")?.set_int("max_tokens", 64)?;
//! for piece in pair.stream(&fsgen::Prompt::user("Hello"), &options)? {
//!     print!("{}", String::from_utf8_lossy(&piece?.bytes));
//! }
//! # Ok::<(), fsgen::Error>(())
//! ```
mod ffi;

use std::ffi::{CStr, CString};
use std::fmt;
use std::os::raw::{c_char, c_int, c_void};
use std::ptr;

/// A failed call: the C status (`FSGEN_ERR_*`) and the library's message.
#[derive(Debug, Clone, PartialEq)]
pub struct Error {
    pub status: i32,
    pub message: String,
}

impl Error {
    /// "FSGEN_ERR_MODEL_LOAD", ...
    pub fn status_name(&self) -> &'static str {
        unsafe { CStr::from_ptr(ffi::fsgen_status_name(self.status)) }.to_str().unwrap_or("unknown")
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.status_name(), self.message)
    }
}

impl std::error::Error for Error {}

pub type Result<T> = std::result::Result<T, Error>;

fn check(status: c_int) -> Result<c_int> {
    if status >= 0 {
        return Ok(status);
    }
    let message = unsafe { CStr::from_ptr(ffi::fsgen_last_error_message()) }.to_string_lossy().into_owned();
    Err(Error { status, message })
}

fn c_string(s: &str) -> Result<CString> {
    CString::new(s).map_err(|_| Error { status: -6, message: format!("{s:?} contains a NUL byte") })
}

/// The library's API version (`FSGEN_API_VERSION` of the libfsgen loaded).
pub fn api_version() -> i32 {
    unsafe { ffi::fsgen_api_version() }
}

/// Who wrote a piece or a token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    System1,
    System2,
    Combined,
}

impl Source {
    fn from_c(value: c_int) -> Source {
        match value {
            0 => Source::System1,
            1 => Source::System2,
            _ => Source::Combined,
        }
    }
}

/// Model options or generation options, set by name (the names of fsgen's parameter tables).
pub struct Options {
    raw: *mut ffi::fsgen_options,
}

unsafe impl Send for Options {}

impl Options {
    fn new(kind: c_int) -> Options {
        let mut raw = ptr::null_mut();
        check(unsafe { ffi::fsgen_options_new(kind, &mut raw) }).expect("fsgen_options_new");
        Options { raw }
    }
    /// Options for loading models (n_ctx, n_threads, n_gpu_layers, n_batch, ...).
    pub fn model() -> Options {
        Options::new(ffi::FSGEN_OPTIONS_MODEL)
    }
    /// Options for generating (method, max_tokens, temperature, seed, stop, ...).
    pub fn generate() -> Options {
        Options::new(ffi::FSGEN_OPTIONS_GENERATE)
    }
    pub fn set_str(&mut self, name: &str, value: &str) -> Result<&mut Self> {
        let (n, v) = (c_string(name)?, c_string(value)?);
        check(unsafe { ffi::fsgen_options_set_str(self.raw, n.as_ptr(), v.as_ptr()) })?;
        Ok(self)
    }
    pub fn set_int(&mut self, name: &str, value: i64) -> Result<&mut Self> {
        let n = c_string(name)?;
        check(unsafe { ffi::fsgen_options_set_int(self.raw, n.as_ptr(), value) })?;
        Ok(self)
    }
    pub fn set_uint(&mut self, name: &str, value: u64) -> Result<&mut Self> {
        let n = c_string(name)?;
        check(unsafe { ffi::fsgen_options_set_uint(self.raw, n.as_ptr(), value) })?;
        Ok(self)
    }
    pub fn set_float(&mut self, name: &str, value: f64) -> Result<&mut Self> {
        let n = c_string(name)?;
        check(unsafe { ffi::fsgen_options_set_float(self.raw, n.as_ptr(), value) })?;
        Ok(self)
    }
    pub fn set_bool(&mut self, name: &str, value: bool) -> Result<&mut Self> {
        let n = c_string(name)?;
        check(unsafe { ffi::fsgen_options_set_bool(self.raw, n.as_ptr(), value as c_int) })?;
        Ok(self)
    }
    pub fn set_strs(&mut self, name: &str, values: &[&str]) -> Result<&mut Self> {
        let n = c_string(name)?;
        let owned = values.iter().map(|v| c_string(v)).collect::<Result<Vec<_>>>()?;
        let pointers: Vec<*const c_char> = owned.iter().map(|v| v.as_ptr()).collect();
        check(unsafe { ffi::fsgen_options_set_strs(self.raw, n.as_ptr(), pointers.as_ptr(), pointers.len()) })?;
        Ok(self)
    }
    /// Back to the default.
    pub fn unset(&mut self, name: &str) -> Result<&mut Self> {
        let n = c_string(name)?;
        check(unsafe { ffi::fsgen_options_unset(self.raw, n.as_ptr()) })?;
        Ok(self)
    }
}

impl Drop for Options {
    fn drop(&mut self) {
        unsafe { ffi::fsgen_options_free(self.raw) }
    }
}

/// Plain text, or chat messages (role, content) rendered with the model's chat template.
pub enum Prompt {
    Text(String),
    Messages(Vec<(String, String)>),
}

impl Prompt {
    /// One user message.
    pub fn user(content: &str) -> Prompt {
        Prompt::Messages(vec![("user".into(), content.into())])
    }
}

// The C arguments of a prompt, alive as long as this value.
struct CPrompt {
    text: Option<CString>,
    strings: Vec<CString>,
    roles: Vec<*const c_char>,
    contents: Vec<*const c_char>,
}

impl CPrompt {
    fn new(prompt: &Prompt) -> Result<CPrompt> {
        let mut p = CPrompt { text: None, strings: Vec::new(), roles: Vec::new(), contents: Vec::new() };
        match prompt {
            Prompt::Text(t) => p.text = Some(c_string(t)?),
            Prompt::Messages(m) => {
                for (role, content) in m {
                    p.strings.push(c_string(role)?);
                    p.strings.push(c_string(content)?);
                }
                for pair in p.strings.chunks(2) {
                    p.roles.push(pair[0].as_ptr());
                    p.contents.push(pair[1].as_ptr());
                }
            }
        }
        Ok(p)
    }
    fn text(&self) -> *const c_char {
        self.text.as_ref().map_or(ptr::null(), |t| t.as_ptr())
    }
}

/// A finished generation.
pub struct Output {
    raw: *mut ffi::fsgen_result,
}

unsafe impl Send for Output {}

impl Output {
    pub fn text(&self) -> String {
        let mut length = 0usize;
        let p = unsafe { ffi::fsgen_result_text(self.raw, &mut length) };
        String::from_utf8_lossy(unsafe { std::slice::from_raw_parts(p as *const u8, length) }).into_owned()
    }
    /// "eog", "stop", "length" or "cancelled".
    pub fn finish_reason(&self) -> String {
        unsafe { CStr::from_ptr(ffi::fsgen_result_finish_reason(self.raw)) }.to_string_lossy().into_owned()
    }
    pub fn tokens(&self) -> Vec<i32> {
        let mut n = 0usize;
        let p = unsafe { ffi::fsgen_result_tokens(self.raw, &mut n) };
        if p.is_null() { Vec::new() } else { unsafe { std::slice::from_raw_parts(p, n) }.to_vec() }
    }
    /// Who wrote each token (recorded with the generation option trace = true; empty otherwise).
    pub fn sources(&self) -> Vec<Source> {
        let mut n = 0usize;
        let p = unsafe { ffi::fsgen_result_sources(self.raw, &mut n) };
        if p.is_null() { return Vec::new(); }
        unsafe { std::slice::from_raw_parts(p, n) }.iter().map(|&s| Source::from_c(s as c_int)).collect()
    }
    /// A statistic by name: n_tokens, tokens_per_second, system2_fraction, ...
    pub fn stat(&self, name: &str) -> Result<f64> {
        let n = c_string(name)?;
        let mut value = 0.0;
        check(unsafe { ffi::fsgen_result_stat(self.raw, n.as_ptr(), &mut value) })?;
        Ok(value)
    }
}

impl Drop for Output {
    fn drop(&mut self) {
        unsafe { ffi::fsgen_result_free(self.raw) }
    }
}

/// A piece of text as it is produced: its bytes (a piece may end inside a UTF-8 character), who
/// wrote it, and where an accepted draft came from (0 none, 1 System 1, 2 n-gram).
#[derive(Debug, Clone, PartialEq)]
pub struct Piece {
    pub bytes: Vec<u8>,
    pub source: Source,
    pub draft: i32,
}

/// A small (System 1) and a large (System 2) model decoding together.
pub struct Pair {
    raw: *mut ffi::fsgen_pair,
}

// The C API serializes generations on a pair and lets cancel() run from any thread.
unsafe impl Send for Pair {}
unsafe impl Sync for Pair {}

unsafe extern "C" fn forward_piece(user: *mut c_void, piece: *const c_char, length: usize, source: c_int, draft: c_int) -> c_int {
    let callback = &mut *(user as *mut &mut dyn FnMut(Piece) -> bool);
    let bytes = if length == 0 { Vec::new() } else { std::slice::from_raw_parts(piece as *const u8, length).to_vec() };
    // A panic must not unwind into C: it stops the generation instead.
    let keep_going = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        callback(Piece { bytes, source: Source::from_c(source), draft })
    }));
    if keep_going.unwrap_or(false) { 0 } else { 1 }
}

impl Pair {
    /// Loads both models with the same model options.
    pub fn new(small_path: &str, large_path: &str, options: &Options) -> Result<Pair> {
        let (s, l) = (c_string(small_path)?, c_string(large_path)?);
        let mut raw = ptr::null_mut();
        check(unsafe { ffi::fsgen_pair_load(s.as_ptr(), l.as_ptr(), options.raw, &mut raw) })?;
        Ok(Pair { raw })
    }

    pub fn generate(&self, prompt: &Prompt, options: &Options) -> Result<Output> {
        self.generate_with(prompt, options, |_| true)
    }

    /// Generates, giving each piece to `on_piece` as it comes; returning false stops (finish
    /// reason "cancelled").
    pub fn generate_with<F: FnMut(Piece) -> bool>(&self, prompt: &Prompt, options: &Options, mut on_piece: F) -> Result<Output> {
        let p = CPrompt::new(prompt)?;
        let mut callback: &mut dyn FnMut(Piece) -> bool = &mut on_piece;
        let mut raw = ptr::null_mut();
        check(unsafe {
            ffi::fsgen_pair_generate(
                self.raw,
                p.text(),
                p.roles.as_ptr(),
                p.contents.as_ptr(),
                p.roles.len(),
                options.raw,
                Some(forward_piece),
                &mut callback as *mut _ as *mut c_void,
                &mut raw,
            )
        })?;
        Ok(Output { raw })
    }

    /// Generates on a worker thread; the pieces are the iterator's items.
    pub fn stream(&self, prompt: &Prompt, options: &Options) -> Result<Stream> {
        let p = CPrompt::new(prompt)?;
        let mut raw = ptr::null_mut();
        check(unsafe {
            ffi::fsgen_pair_stream(self.raw, p.text(), p.roles.as_ptr(), p.contents.as_ptr(), p.roles.len(), options.raw, &mut raw)
        })?;
        Ok(Stream { raw, finished: false })
    }

    /// Stops the generations running on this pair now (any thread).
    pub fn cancel(&self) {
        unsafe { ffi::fsgen_pair_cancel(self.raw) };
    }
}

impl Drop for Pair {
    fn drop(&mut self) {
        unsafe { ffi::fsgen_pair_free(self.raw) }
    }
}

/// A generation running on a worker thread. Iterating yields its pieces; dropping it cancels it.
pub struct Stream {
    raw: *mut ffi::fsgen_stream,
    finished: bool,
}

unsafe impl Send for Stream {}
// Through a shared reference only cancel() runs, which the C API allows from any thread.
unsafe impl Sync for Stream {}

impl Stream {
    /// Stops this generation; the iterator then ends.
    pub fn cancel(&self) {
        unsafe { ffi::fsgen_stream_cancel(self.raw) };
    }
    /// The result (waits for the end).
    pub fn result(&mut self) -> Result<Output> {
        let mut raw = ptr::null_mut();
        check(unsafe { ffi::fsgen_stream_result(self.raw, &mut raw) })?;
        Ok(Output { raw })
    }
}

impl Iterator for Stream {
    type Item = Result<Piece>;
    fn next(&mut self) -> Option<Result<Piece>> {
        if self.finished {
            return None;
        }
        let (mut piece, mut length, mut source, mut draft) = (ptr::null(), 0usize, 0, 0);
        let status = unsafe { ffi::fsgen_stream_next(self.raw, -1.0, &mut piece, &mut length, &mut source, &mut draft) };
        match check(status) {
            Ok(ffi::FSGEN_OK) => {
                let bytes = unsafe { std::slice::from_raw_parts(piece as *const u8, length) }.to_vec();
                Some(Ok(Piece { bytes, source: Source::from_c(source), draft }))
            }
            Ok(_) => {
                self.finished = true;
                None
            }
            Err(e) => {
                self.finished = true;
                Some(Err(e))
            }
        }
    }
}

impl Drop for Stream {
    fn drop(&mut self) {
        unsafe { ffi::fsgen_stream_free(self.raw) }
    }
}
