# Fails when a file under DIR includes "folder/..." for a folder not in ALLOWED (comma-separated);
# on success touches STAMP. Run by md_module (MdModule.cmake) at build time:
#   cmake -DMODULE=md_x -DALLOWED=core,cuda -DDIR=/path/to/folder -DSTAMP=file -P check_includes.cmake
cmake_minimum_required(VERSION 3.24)  # policies for -P mode (IN_LIST)
string(REPLACE "," ";" allowed "${ALLOWED}")
file(GLOB_RECURSE files ${DIR}/*.h ${DIR}/*.cuh ${DIR}/*.cpp ${DIR}/*.cu)
set(bad "")
foreach(f IN LISTS files)
  file(STRINGS ${f} lines REGEX "^[ \t]*#[ \t]*include[ \t]+\"[A-Za-z0-9_]+/")
  foreach(line IN LISTS lines)
    string(REGEX REPLACE "^[ \t]*#[ \t]*include[ \t]+\"([A-Za-z0-9_]+)/.*" "\\1" folder "${line}")
    if(NOT folder IN_LIST allowed)
      file(RELATIVE_PATH rel ${DIR}/.. ${f})
      string(APPEND bad "  ${rel}: ${line}\n")
    endif()
  endforeach()
endforeach()
if(bad)
  message(FATAL_ERROR "${MODULE} includes a module it does not depend on (allowed: ${ALLOWED}):\n${bad}"
                      "Add the dependency to ${MODULE}'s md_module(... DEPS) if the graph allows it "
                      "(no cycles; docs/architecture.md), or move the code.")
endif()
file(TOUCH ${STAMP})
