# The library's API reference (docs/Doxyfile) with Debian's doxygen, when it
# is installed (`make docs-deps`): `cmake --build build --target api_docs`
# writes build/docs/html/index.html. A public name left undocumented fails it.

find_program(FERRY_DOXYGEN doxygen)
if(NOT FERRY_DOXYGEN)
  message(STATUS "ferry: doxygen not found: no API reference (make docs-deps installs it)")
  return()
endif()

# doxygen makes its output folder but not the one above it.
file(MAKE_DIRECTORY ${CMAKE_BINARY_DIR}/docs)
set(FERRY_API_DOCS_COMMAND
    ${CMAKE_COMMAND} -E env FERRY_SOURCE_DIR=${PROJECT_SOURCE_DIR}
                            FERRY_DOCS_DIR=${CMAKE_BINARY_DIR}/docs
                            FERRY_VERSION=${PROJECT_VERSION}
    ${FERRY_DOXYGEN} ${PROJECT_SOURCE_DIR}/docs/Doxyfile)
add_custom_target(api_docs
  COMMAND ${FERRY_API_DOCS_COMMAND}
  COMMENT "API reference from include/ferry into ${CMAKE_BINARY_DIR}/docs"
  VERBATIM)
