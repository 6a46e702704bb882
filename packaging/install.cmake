# What `cmake --install` puts where (GNUInstallDirs): the public headers, the
# libraries, a CMake package (find_package(ferry): ferry::ferry, ferry::testkit),
# pkg-config files (ferry.pc, ferry-testkit.pc) and, with the command, the
# ferry binary, its man pages and its bash completion.

set(FERRY_CMAKE_PACKAGE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/ferry)

# The headers of the testkit only when the testkit itself is installed.
if(FERRY_HAS_TESTKIT)
  install(DIRECTORY include/ferry DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}
          FILES_MATCHING PATTERN "*.hpp")
else()
  install(DIRECTORY include/ferry DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}
          FILES_MATCHING PATTERN "*.hpp" PATTERN "testkit" EXCLUDE)
endif()

install(TARGETS ferry_lib EXPORT ferryTargets)
install(EXPORT ferryTargets NAMESPACE ferry:: DESTINATION ${FERRY_CMAKE_PACKAGE_DIR})

# What a consumer of a static library must link too, which the shared library
# already records: liburing (behind the io_uring model) and, for the testkit, {fmt}.
get_target_property(FERRY_LIBRARY_TYPE ferry_lib TYPE)
if(FERRY_LIBRARY_TYPE STREQUAL "STATIC_LIBRARY")
  set(FERRY_STATIC ON)
else()
  set(FERRY_STATIC OFF)
endif()
if(FERRY_STATIC AND FERRY_HAS_URING)
  set(FERRY_CONSUMERS_LINK_URING ON)
else()
  set(FERRY_CONSUMERS_LINK_URING OFF)
endif()

if(FERRY_HAS_TESTKIT)
  # Its own export set, so that find_package(ferry) works without {fmt} for
  # whoever needs only ferry::ferry.
  install(TARGETS ferry_testkit EXPORT ferryTestkitTargets)
  install(EXPORT ferryTestkitTargets NAMESPACE ferry:: DESTINATION ${FERRY_CMAKE_PACKAGE_DIR})
endif()

configure_package_config_file(packaging/ferryConfig.cmake.in
  ${CMAKE_CURRENT_BINARY_DIR}/ferryConfig.cmake
  INSTALL_DESTINATION ${FERRY_CMAKE_PACKAGE_DIR})
# Before 1.0 a minor release may break the API: only the same major.minor is compatible.
write_basic_package_version_file(${CMAKE_CURRENT_BINARY_DIR}/ferryConfigVersion.cmake
  VERSION ${PROJECT_VERSION} COMPATIBILITY SameMinorVersion)
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/ferryConfig.cmake
              ${CMAKE_CURRENT_BINARY_DIR}/ferryConfigVersion.cmake
        DESTINATION ${FERRY_CMAKE_PACKAGE_DIR})

# pkg-config: the prefix is found from the .pc file's own place (${pcfiledir}),
# so the files stay right after `cmake --install --prefix DIR` or with DESTDIR.
set(FERRY_PKGCONFIG_DIR ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
if(IS_ABSOLUTE "${CMAKE_INSTALL_LIBDIR}" OR IS_ABSOLUTE "${CMAKE_INSTALL_INCLUDEDIR}")
  set(FERRY_PC_PREFIX "${CMAKE_INSTALL_PREFIX}")
  set(FERRY_PC_LIBDIR "${CMAKE_INSTALL_FULL_LIBDIR}")
  set(FERRY_PC_INCLUDEDIR "${CMAKE_INSTALL_FULL_INCLUDEDIR}")
else()
  file(RELATIVE_PATH FERRY_PC_UP "/prefix/${FERRY_PKGCONFIG_DIR}" "/prefix")
  string(REGEX REPLACE "/$" "" FERRY_PC_UP "${FERRY_PC_UP}")
  set(FERRY_PC_PREFIX "\${pcfiledir}/${FERRY_PC_UP}")
  set(FERRY_PC_LIBDIR "\${prefix}/${CMAKE_INSTALL_LIBDIR}")
  set(FERRY_PC_INCLUDEDIR "\${prefix}/${CMAKE_INSTALL_INCLUDEDIR}")
endif()
# `pkg-config --libs ferry` must link a static libferry as it is: its
# dependencies go in Requires, not Requires.private (which only --static reads).
set(FERRY_PC_REQUIRES "")
if(FERRY_CONSUMERS_LINK_URING)
  set(FERRY_PC_REQUIRES "Requires: liburing")
endif()
configure_file(packaging/ferry.pc.in ${CMAKE_CURRENT_BINARY_DIR}/ferry.pc @ONLY)
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/ferry.pc DESTINATION ${FERRY_PKGCONFIG_DIR})
if(FERRY_HAS_TESTKIT)
  set(FERRY_PC_TESTKIT_REQUIRES "ferry = ${PROJECT_VERSION}")
  if(FERRY_STATIC)
    string(APPEND FERRY_PC_TESTKIT_REQUIRES ", fmt")
  endif()
  configure_file(packaging/ferry-testkit.pc.in ${CMAKE_CURRENT_BINARY_DIR}/ferry-testkit.pc @ONLY)
  install(FILES ${CMAKE_CURRENT_BINARY_DIR}/ferry-testkit.pc DESTINATION ${FERRY_PKGCONFIG_DIR})
endif()

if(FERRY_BUILD_CLI)
  install(TARGETS ferry)
  if(TARGET ferry_command_docs)
    install(DIRECTORY ${FERRY_MAN_DIR}/ DESTINATION ${CMAKE_INSTALL_MANDIR}/man1
            FILES_MATCHING PATTERN "*.1")
    install(FILES ${FERRY_COMPLETION_FILE}
            DESTINATION ${CMAKE_INSTALL_DATAROOTDIR}/bash-completion/completions)
  endif()
endif()
