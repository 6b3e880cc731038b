# Fails unless the module graph the build declares (GRAPH, written by md_write_module_graph) is
# the one docs/architecture.md lists between "<!-- module-graph -->" and "<!-- /module-graph -->".
#   cmake -DGRAPH=build/module_graph.txt -DDOC=docs/architecture.md -P compare_docs.cmake
cmake_minimum_required(VERSION 3.24)
file(READ ${GRAPH} built)
file(READ ${DOC} doc)
string(REGEX MATCH "<!-- module-graph -->\n```text\n(.*)```\n<!-- /module-graph -->" found "${doc}")
if(NOT found)
  message(FATAL_ERROR "${DOC}: no block between <!-- module-graph --> and <!-- /module-graph -->")
endif()
set(documented "${CMAKE_MATCH_1}")
if(NOT documented STREQUAL built)
  message(FATAL_ERROR "${DOC}'s module graph differs from the build's (src/*/CMakeLists.txt).\n"
                      "Build:\n${built}\nDocs:\n${documented}\nCopy the build's into the docs.")
endif()
message(STATUS "module graph: docs match the build")
