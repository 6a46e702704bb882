# The ferry command's man pages and bash completion, generated at build time
# from the command's own option tables (`ferry --option-table`), so neither can
# drift from what the parser accepts. Included when the command is built.
#   build/man/ferry.1, build/man/ferry-COMMAND.1   (man -l build/man/ferry-connect.1)
#   build/completion/ferry                         (source it in bash)

find_package(Python3 COMPONENTS Interpreter)
if(NOT Python3_Interpreter_FOUND)
  message(STATUS "ferry: Python 3 not found: no man pages or bash completion")
  return()
endif()

set(FERRY_MAN_DIR ${CMAKE_BINARY_DIR}/man)
set(FERRY_COMPLETION_FILE ${CMAKE_BINARY_DIR}/completion/ferry)
# Running the freshly built binary: the sanitizers' leak report must not fail the build.
set(FERRY_DOCS_ENV ${CMAKE_COMMAND} -E env ASAN_OPTIONS=detect_leaks=0)

add_custom_command(
  OUTPUT ${FERRY_MAN_DIR}/ferry.1
  COMMAND ${FERRY_DOCS_ENV} ${Python3_EXECUTABLE} ${CMAKE_CURRENT_LIST_DIR}/man_pages.py
          --ferry $<TARGET_FILE:ferry> --version ${PROJECT_VERSION} --output-dir ${FERRY_MAN_DIR}
  DEPENDS ferry ${CMAKE_CURRENT_LIST_DIR}/man_pages.py
  COMMENT "Man pages from ferry --option-table"
  VERBATIM)
add_custom_command(
  OUTPUT ${FERRY_COMPLETION_FILE}
  COMMAND ${FERRY_DOCS_ENV} ${Python3_EXECUTABLE} ${CMAKE_CURRENT_LIST_DIR}/bash_completion.py
          --ferry $<TARGET_FILE:ferry> --output ${FERRY_COMPLETION_FILE}
  DEPENDS ferry ${CMAKE_CURRENT_LIST_DIR}/bash_completion.py
  COMMENT "Bash completion from ferry --option-table"
  VERBATIM)
add_custom_target(ferry_command_docs ALL DEPENDS ${FERRY_MAN_DIR}/ferry.1 ${FERRY_COMPLETION_FILE})
