# Installing the C++ library (not done when building the Python wheel): the core, its public
# headers, llama.cpp's shared libraries, and a package config so that find_package(fsgen)
# gives fsgen::core.
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

install(TARGETS fsgen_core ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT fsgen)
install(TARGETS ${FSGEN_LLAMA_LIBS}
        LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT fsgen
        RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR} COMPONENT fsgen
        ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT fsgen)
if(TARGET fsgen-rpc)  # beside the libraries: the core finds it next to libllama
  install(TARGETS fsgen-rpc RUNTIME DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT fsgen)
endif()
install(DIRECTORY include/fsgen DESTINATION ${CMAKE_INSTALL_INCLUDEDIR} COMPONENT fsgen)

# libfsgen, the C API: #include <fsgen.h>, pkg-config fsgen (relocatable: paths from the .pc's folder).
install(TARGETS fsgen
        LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT fsgen
        RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR} COMPONENT fsgen
        ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT fsgen)
install(FILES include/fsgen.h DESTINATION ${CMAKE_INSTALL_INCLUDEDIR} COMPONENT fsgen)
file(RELATIVE_PATH FSGEN_PC_PREFIX "/${CMAKE_INSTALL_LIBDIR}/pkgconfig" "/")
string(REGEX REPLACE "/$" "" FSGEN_PC_PREFIX "${FSGEN_PC_PREFIX}")
configure_file(cmake/fsgen.pc.in ${CMAKE_CURRENT_BINARY_DIR}/fsgen.pc @ONLY)
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/fsgen.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig COMPONENT fsgen)

foreach(backend ggml-metal ggml-cuda ggml-blas ggml-vulkan)
  if(TARGET ${backend})
    install(TARGETS ${backend} LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT fsgen
            RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR} COMPONENT fsgen)
  endif()
endforeach()

configure_package_config_file(cmake/fsgenConfig.cmake.in ${CMAKE_CURRENT_BINARY_DIR}/fsgenConfig.cmake
  INSTALL_DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/fsgen)
write_basic_package_version_file(${CMAKE_CURRENT_BINARY_DIR}/fsgenConfigVersion.cmake
  COMPATIBILITY SameMinorVersion)
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/fsgenConfig.cmake ${CMAKE_CURRENT_BINARY_DIR}/fsgenConfigVersion.cmake
        DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/fsgen COMPONENT fsgen)
