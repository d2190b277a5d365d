# Locate (or fetch) the pinned llama.cpp tree and add it to the build with fsgen's defaults.

set(FSGEN_LLAMA_CPP_DIR "$ENV{FSGEN_LLAMA_CPP_DIR}" CACHE PATH
    "llama.cpp source tree to build against (default: fetch the pinned tree into third_party/llama.cpp)")
if(NOT FSGEN_LLAMA_CPP_DIR)
  set(FSGEN_LLAMA_CPP_DIR "${PROJECT_SOURCE_DIR}/third_party/llama.cpp")
  if(NOT EXISTS "${FSGEN_LLAMA_CPP_DIR}/include/llama.h")
    find_package(Python COMPONENTS Interpreter REQUIRED)
    execute_process(
      COMMAND "${Python_EXECUTABLE}" "${PROJECT_SOURCE_DIR}/cmake/fetch_llama_cpp.py" "${FSGEN_LLAMA_CPP_DIR}"
      RESULT_VARIABLE fetch_result)
    if(NOT fetch_result EQUAL 0)
      message(FATAL_ERROR "fsgen: fetching llama.cpp failed; set FSGEN_LLAMA_CPP_DIR to a llama.cpp source tree")
    endif()
  endif()
endif()
if(NOT EXISTS "${FSGEN_LLAMA_CPP_DIR}/include/llama.h")
  message(FATAL_ERROR "fsgen: ${FSGEN_LLAMA_CPP_DIR} is not a llama.cpp source tree (no include/llama.h)")
endif()

# Which commit: the pin file written by the fetch script, else git, else unknown.
set(FSGEN_LLAMA_CPP_COMMIT "unknown")
if(EXISTS "${FSGEN_LLAMA_CPP_DIR}/FSGEN_PIN")
  file(STRINGS "${FSGEN_LLAMA_CPP_DIR}/FSGEN_PIN" FSGEN_LLAMA_CPP_COMMIT LIMIT_COUNT 1)
else()
  find_package(Git QUIET)
  if(GIT_FOUND)
    execute_process(COMMAND "${GIT_EXECUTABLE}" rev-parse --short=9 HEAD
      WORKING_DIRECTORY "${FSGEN_LLAMA_CPP_DIR}" OUTPUT_VARIABLE git_head
      OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET RESULT_VARIABLE git_result)
    if(git_result EQUAL 0)
      set(FSGEN_LLAMA_CPP_COMMIT "${git_head}")
    endif()
  endif()
endif()
message(STATUS "fsgen: llama.cpp ${FSGEN_LLAMA_CPP_COMMIT} from ${FSGEN_LLAMA_CPP_DIR}")

# Only the libraries: no examples, tools, tests, server or common (keeps CI builds short).
foreach(opt LLAMA_BUILD_TESTS LLAMA_BUILD_TOOLS LLAMA_BUILD_EXAMPLES LLAMA_BUILD_SERVER
            LLAMA_BUILD_COMMON LLAMA_BUILD_APP LLAMA_OPENSSL LLAMA_CURL)
  set(${opt} OFF CACHE BOOL "set by fsgen" FORCE)
endforeach()
# Shared llama/ggml libraries: the Python module, C++ users and llama-cpp-python (through
# LLAMA_CPP_LIB_PATH) can all run literally the same engine.
set(BUILD_SHARED_LIBS ON CACHE BOOL "" FORCE)
set(GGML_CCACHE OFF CACHE BOOL "" FORCE)
# llama.cpp's RPC backend (a remote System 2, `fsgen rpc-server`). Its RDMA transport would switch
# itself on wherever libibverbs is installed, making the build depend on the machine: off.
set(GGML_RPC ON CACHE BOOL "set by fsgen")
set(GGML_RPC_RDMA OFF CACHE BOOL "set by fsgen" FORCE)

include("${CMAKE_CURRENT_LIST_DIR}/cpu_features.cmake")

add_subdirectory("${FSGEN_LLAMA_CPP_DIR}" "${CMAKE_BINARY_DIR}/llama.cpp" EXCLUDE_FROM_ALL)

# Installed next to each other (fsgen/lib in the wheel, lib/ for C++), llama.cpp's libraries
# must find one another there.
set(FSGEN_LLAMA_LIBS llama ggml ggml-base ggml-cpu)
if(TARGET ggml-rpc)
  list(APPEND FSGEN_LLAMA_LIBS ggml-rpc)
endif()
foreach(lib ${FSGEN_LLAMA_LIBS})
  if(APPLE)
    set_target_properties(${lib} PROPERTIES INSTALL_RPATH "@loader_path")
  else()
    set_target_properties(${lib} PROPERTIES INSTALL_RPATH "$ORIGIN")
  endif()
endforeach()
