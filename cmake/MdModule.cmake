# md_module: one folder of the code base as one static library that may include only its own
# headers and those of the modules it depends on (directly or through them). The build checks it:
# a new "#include "folder/..."" of a module not in DEPS fails the build (check_includes.cmake),
# so the module graph in docs/architecture.md stays the graph the code has.
#
#   md_module(<target> FOLDER <include prefix> SOURCES <files...> [DEPS <md_* modules...>])
#
# FOLDER is the first path component of the module's includes ("layers" for "layers/dense.h");
# the module's files are all files under the current source directory. DEPS must be declared
# before (so the graph has no cycles by construction) and are linked PUBLIC.
set(MD_CHECK_INCLUDES ${CMAKE_CURRENT_LIST_DIR}/check_includes.cmake)

function(md_module target)
  cmake_parse_arguments(M "" "FOLDER" "SOURCES;DEPS" ${ARGN})
  if(NOT M_FOLDER OR NOT M_SOURCES)
    message(FATAL_ERROR "md_module(${target}): FOLDER and SOURCES are required")
  endif()
  add_library(${target} STATIC ${M_SOURCES})
  set(allowed ${M_FOLDER})
  foreach(dep IN LISTS M_DEPS)
    get_property(dep_allowed GLOBAL PROPERTY MD_MODULE_ALLOWED_${dep})
    if(NOT dep_allowed)
      message(FATAL_ERROR "md_module(${target}): ${dep} is not a module declared before it "
                          "(declare modules in dependency order: no cycles)")
    endif()
    list(APPEND allowed ${dep_allowed})
  endforeach()
  list(REMOVE_DUPLICATES allowed)
  list(SORT allowed)
  target_link_libraries(${target} PUBLIC ${M_DEPS})
  set_property(GLOBAL PROPERTY MD_MODULE_ALLOWED_${target} "${allowed}")
  set_property(GLOBAL APPEND PROPERTY MD_MODULES ${target})
  string(REPLACE ";" " " deps_text "${M_DEPS}")
  set_property(GLOBAL PROPERTY MD_MODULE_DEPS_${target} "${deps_text}")

  file(GLOB_RECURSE files CONFIGURE_DEPENDS
       ${CMAKE_CURRENT_SOURCE_DIR}/*.h ${CMAKE_CURRENT_SOURCE_DIR}/*.cuh
       ${CMAKE_CURRENT_SOURCE_DIR}/*.cpp ${CMAKE_CURRENT_SOURCE_DIR}/*.cu)
  string(REPLACE ";" "," allowed_csv "${allowed}")
  set(stamp ${CMAKE_CURRENT_BINARY_DIR}/${target}.includes_checked)
  add_custom_command(OUTPUT ${stamp}
    COMMAND ${CMAKE_COMMAND} -DMODULE=${target} -DALLOWED=${allowed_csv}
            -DDIR=${CMAKE_CURRENT_SOURCE_DIR} -DSTAMP=${stamp} -P ${MD_CHECK_INCLUDES}
    DEPENDS ${files} ${MD_CHECK_INCLUDES}
    COMMENT "Checking ${target}'s includes against its module dependencies" VERBATIM)
  target_sources(${target} PRIVATE ${stamp})
endfunction()

# Writes the declared graph (one line per module: "md_x: md_a md_b") to FILE; the test
# module_graph_matches_docs compares it with docs/architecture.md.
function(md_write_module_graph file)
  get_property(modules GLOBAL PROPERTY MD_MODULES)
  set(text "")
  foreach(m IN LISTS modules)
    get_property(deps GLOBAL PROPERTY MD_MODULE_DEPS_${m})
    string(APPEND text "${m}: ${deps}\n")
  endforeach()
  file(WRITE ${file} "${text}")
endfunction()
