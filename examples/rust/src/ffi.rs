//! fsgen.h's declarations (the C API), one for one.
#![allow(non_camel_case_types, dead_code)]
use std::os::raw::{c_char, c_double, c_int, c_void};

pub const FSGEN_API_VERSION: c_int = 10000;
pub const FSGEN_OK: c_int = 0;
pub const FSGEN_END: c_int = 1;
pub const FSGEN_TIMEOUT: c_int = 2;
pub const FSGEN_OPTIONS_MODEL: c_int = 0;
pub const FSGEN_OPTIONS_GENERATE: c_int = 1;

#[repr(C)]
pub struct fsgen_model {
    _private: [u8; 0],
}
#[repr(C)]
pub struct fsgen_pair {
    _private: [u8; 0],
}
#[repr(C)]
pub struct fsgen_options {
    _private: [u8; 0],
}
#[repr(C)]
pub struct fsgen_result {
    _private: [u8; 0],
}
#[repr(C)]
pub struct fsgen_stream {
    _private: [u8; 0],
}

pub type fsgen_piece_fn =
    Option<unsafe extern "C" fn(user: *mut c_void, piece: *const c_char, length: usize, source: c_int, draft: c_int) -> c_int>;

extern "C" {
    pub fn fsgen_api_version() -> c_int;
    pub fn fsgen_version() -> *const c_char;
    pub fn fsgen_last_error_message() -> *const c_char;
    pub fn fsgen_status_name(status: c_int) -> *const c_char;
    pub fn fsgen_string_free(s: *mut c_char);

    pub fn fsgen_options_new(kind: c_int, out: *mut *mut fsgen_options) -> c_int;
    pub fn fsgen_options_free(options: *mut fsgen_options);
    pub fn fsgen_options_set_str(o: *mut fsgen_options, name: *const c_char, value: *const c_char) -> c_int;
    pub fn fsgen_options_set_int(o: *mut fsgen_options, name: *const c_char, value: i64) -> c_int;
    pub fn fsgen_options_set_uint(o: *mut fsgen_options, name: *const c_char, value: u64) -> c_int;
    pub fn fsgen_options_set_float(o: *mut fsgen_options, name: *const c_char, value: c_double) -> c_int;
    pub fn fsgen_options_set_bool(o: *mut fsgen_options, name: *const c_char, value: c_int) -> c_int;
    pub fn fsgen_options_set_strs(o: *mut fsgen_options, name: *const c_char, values: *const *const c_char, n: usize) -> c_int;
    pub fn fsgen_options_unset(o: *mut fsgen_options, name: *const c_char) -> c_int;
    pub fn fsgen_param_name(i: usize) -> *const c_char;
    pub fn fsgen_model_option_name(i: usize) -> *const c_char;

    pub fn fsgen_model_load(path: *const c_char, options: *const fsgen_options, out: *mut *mut fsgen_model) -> c_int;
    pub fn fsgen_model_free(model: *mut fsgen_model);
    pub fn fsgen_model_apply_chat_template(
        model: *const fsgen_model,
        roles: *const *const c_char,
        contents: *const *const c_char,
        n: usize,
        add_assistant: c_int,
        out: *mut *mut c_char,
    ) -> c_int;
    pub fn fsgen_pair_new(
        small: *const fsgen_model,
        large: *const fsgen_model,
        small_base: *const fsgen_model,
        options: *const fsgen_options,
        out: *mut *mut fsgen_pair,
    ) -> c_int;
    pub fn fsgen_pair_load(
        small_path: *const c_char,
        large_path: *const c_char,
        options: *const fsgen_options,
        out: *mut *mut fsgen_pair,
    ) -> c_int;
    pub fn fsgen_pair_free(pair: *mut fsgen_pair);

    pub fn fsgen_pair_generate(
        pair: *mut fsgen_pair,
        prompt: *const c_char,
        roles: *const *const c_char,
        contents: *const *const c_char,
        n_messages: usize,
        options: *const fsgen_options,
        on_piece: fsgen_piece_fn,
        user_data: *mut c_void,
        out: *mut *mut fsgen_result,
    ) -> c_int;
    pub fn fsgen_model_generate(
        model: *mut fsgen_model,
        prompt: *const c_char,
        roles: *const *const c_char,
        contents: *const *const c_char,
        n_messages: usize,
        options: *const fsgen_options,
        on_piece: fsgen_piece_fn,
        user_data: *mut c_void,
        out: *mut *mut fsgen_result,
    ) -> c_int;
    pub fn fsgen_pair_cancel(pair: *mut fsgen_pair) -> c_int;
    pub fn fsgen_model_cancel(model: *mut fsgen_model) -> c_int;

    pub fn fsgen_pair_stream(
        pair: *mut fsgen_pair,
        prompt: *const c_char,
        roles: *const *const c_char,
        contents: *const *const c_char,
        n_messages: usize,
        options: *const fsgen_options,
        out: *mut *mut fsgen_stream,
    ) -> c_int;
    pub fn fsgen_model_stream(
        model: *mut fsgen_model,
        prompt: *const c_char,
        roles: *const *const c_char,
        contents: *const *const c_char,
        n_messages: usize,
        options: *const fsgen_options,
        out: *mut *mut fsgen_stream,
    ) -> c_int;
    pub fn fsgen_stream_next(
        stream: *mut fsgen_stream,
        timeout_s: c_double,
        piece: *mut *const c_char,
        length: *mut usize,
        source: *mut c_int,
        draft: *mut c_int,
    ) -> c_int;
    pub fn fsgen_stream_cancel(stream: *mut fsgen_stream) -> c_int;
    pub fn fsgen_stream_result(stream: *mut fsgen_stream, out: *mut *mut fsgen_result) -> c_int;
    pub fn fsgen_stream_free(stream: *mut fsgen_stream);

    pub fn fsgen_result_free(result: *mut fsgen_result);
    pub fn fsgen_result_text(result: *const fsgen_result, length: *mut usize) -> *const c_char;
    pub fn fsgen_result_finish_reason(result: *const fsgen_result) -> *const c_char;
    pub fn fsgen_result_tokens(result: *const fsgen_result, n: *mut usize) -> *const i32;
    pub fn fsgen_result_sources(result: *const fsgen_result, n: *mut usize) -> *const i8;
    pub fn fsgen_result_stat(result: *const fsgen_result, name: *const c_char, out: *mut c_double) -> c_int;
    pub fn fsgen_stat_name(i: usize) -> *const c_char;
}
