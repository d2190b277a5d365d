# CPU flags for ggml on x86-64 Linux: "native minus AMX".
#
# llama.cpp built with GGML_NATIVE=ON on a CPU that advertises AMX compiles the AMX kernels in,
# and they crash (SIGSEGV in ggml_backend_amx_mul_mat) on the first quantized decode on some
# (virtualised) machines: llama.cpp issue 20824. So unless the user chose GGML_NATIVE
# themselves (CMAKE_ARGS), we turn native off and switch on exactly the vector extensions this
# CPU reports, AMX excepted. Other platforms keep llama.cpp's defaults.

set(FSGEN_CORE_ARCH_FLAGS "")
if(DEFINED CACHE{GGML_NATIVE} AND NOT FSGEN_CPU_FLAGS_AUTO)
  message(STATUS "fsgen: GGML_NATIVE=${GGML_NATIVE} chosen by the user; CPU flags left alone")
  if(GGML_NATIVE AND NOT MSVC)
    set(FSGEN_CORE_ARCH_FLAGS -march=native)
  endif()
  return()
endif()
if(NOT CMAKE_SYSTEM_NAME STREQUAL "Linux" OR NOT EXISTS "/proc/cpuinfo")
  return()
endif()
if(NOT CMAKE_SYSTEM_PROCESSOR MATCHES "^(x86_64|AMD64|amd64)$")
  return()
endif()

file(STRINGS "/proc/cpuinfo" cpu_flag_lines REGEX "^flags" LIMIT_COUNT 1)
string(REGEX REPLACE "^flags[ \t]*:[ \t]*" " " cpu_flags "${cpu_flag_lines} ")

set(GGML_NATIVE OFF CACHE BOOL "set by fsgen: native minus AMX" FORCE)
set(FSGEN_CPU_FLAGS_AUTO ON CACHE INTERNAL "fsgen chose the ggml CPU flags")
set(fsgen_enabled "")
# ggml option  <->  /proc/cpuinfo flag
foreach(pair "SSE42:sse4_2" "AVX:avx" "AVX2:avx2" "BMI2:bmi2" "FMA:fma" "F16C:f16c"
             "AVX_VNNI:avx_vnni" "AVX512:avx512f" "AVX512_VBMI:avx512vbmi"
             "AVX512_VNNI:avx512_vnni" "AVX512_BF16:avx512_bf16")
  string(REPLACE ":" ";" pair "${pair}")
  list(GET pair 0 opt)
  list(GET pair 1 flag)
  if(cpu_flags MATCHES " ${flag} ")
    set(GGML_${opt} ON CACHE BOOL "set by fsgen from /proc/cpuinfo" FORCE)
    list(APPEND fsgen_enabled ${opt})
  else()
    set(GGML_${opt} OFF CACHE BOOL "set by fsgen from /proc/cpuinfo" FORCE)
  endif()
endforeach()
foreach(opt AMX_TILE AMX_INT8 AMX_BF16)
  set(GGML_${opt} OFF CACHE BOOL "set by fsgen: AMX kernels crash, llama.cpp issue 20824" FORCE)
endforeach()
message(STATUS "fsgen: ggml CPU flags (native minus AMX): ${fsgen_enabled}")

# fsgen's own per-token loops (softmax over the vocabulary) may use the same vector ISA.
set(FSGEN_CORE_ARCH_FLAGS "")
if("AVX2" IN_LIST fsgen_enabled AND "FMA" IN_LIST fsgen_enabled)
  set(FSGEN_CORE_ARCH_FLAGS -mavx2 -mfma)
endif()
