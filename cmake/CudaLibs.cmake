# CudaLibs.cmake — finds cuDNN and NCCL for the CUDA backend and defines the imported targets
# CUDNN::cudnn and NCCL::nccl. include() it after find_package(CUDAToolkit).
#
# Search order per library (header and library always taken from the same root), as validated
# for our machines and the lent GPU machine (../shared/device/README.md):
#   1. <PKG>_ROOT (CMake variable, else environment variable), when set;
#   2. the CUDA toolkit (CUDAToolkit_LIBRARY_ROOT, and the folders above its include dirs);
#   3. /usr (Debian/Ubuntu: include/ or include/x86_64-linux-gnu, lib/x86_64-linux-gnu);
#   4. the pip wheels of a Python (nvidia-cudnn-cu13, nvidia-nccl-cu13: nvidia/<pkg>/{include,lib}),
#      whose lib/ holds only libcudnn.so.9 / libnccl.so.2 (no plain .so link).
# <PKG>_INCLUDE_DIR + <PKG>_LIBRARY given on the command line skip the search (they are cached;
# delete them from the cache after changing <PKG>_ROOT).
# Results: CUDNN_FOUND, CUDNN_VERSION, NCCL_FOUND, NCCL_VERSION. Never fatal: the caller decides.
include_guard(GLOBAL)

# Roots that pip wheels of `wheel` (nvidia.<wheel>) occupy for the Python in MNIST_DIST_PYTHON
# (default: python3 on PATH, else PyTorch's venv at /opt/torch/.venv).
function(_md_wheel_roots out wheel)
  if(NOT MNIST_DIST_PYTHON)
    find_program(MNIST_DIST_PYTHON NAMES python3 PATHS /opt/torch/.venv/bin
                 DOC "Python whose nvidia.* wheels are searched for cuDNN and NCCL")
  endif()
  set(roots "")
  if(MNIST_DIST_PYTHON)
    # nvidia.* are namespace packages (__file__ is None): use __path__, plus each site folder.
    execute_process(
      COMMAND "${MNIST_DIST_PYTHON}" -c [=[
import importlib, os, site, sys
name, seen = sys.argv[1], []
try:
    seen += list(importlib.import_module("nvidia." + name).__path__)
except Exception:
    pass
try:
    for sp in site.getsitepackages() + [site.getusersitepackages()]:
        seen.append(os.path.join(sp, "nvidia", name))
except Exception:
    pass
print(";".join(os.path.realpath(p) for p in dict.fromkeys(seen) if os.path.isdir(p)))
]=] "${wheel}"
      OUTPUT_VARIABLE roots OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET RESULT_VARIABLE rc)
    if(NOT rc EQUAL 0)
      set(roots "")
    endif()
  endif()
  set(${out} "${roots}" PARENT_SCOPE)
endfunction()

# _md_find_cuda_lib(PKG header libbase wheel): sets the cache variables PKG_INCLUDE_DIR, PKG_LIBRARY.
function(_md_find_cuda_lib pkg header libbase wheel)
  if(${pkg}_INCLUDE_DIR AND ${pkg}_LIBRARY AND EXISTS "${${pkg}_INCLUDE_DIR}/${header}"
     AND EXISTS "${${pkg}_LIBRARY}")
    return()
  endif()
  set(explicit "")
  if(${pkg}_ROOT)
    set(explicit "${${pkg}_ROOT}")
  elseif(NOT "$ENV{${pkg}_ROOT}" STREQUAL "")
    set(explicit "$ENV{${pkg}_ROOT}")
  endif()
  set(roots ${explicit})
  if(CUDAToolkit_LIBRARY_ROOT)
    list(APPEND roots "${CUDAToolkit_LIBRARY_ROOT}")
  endif()
  foreach(inc IN LISTS CUDAToolkit_INCLUDE_DIRS)
    get_filename_component(up "${inc}" DIRECTORY)                 # /usr/local/cuda
    get_filename_component(upup "${inc}/../../.." ABSOLUTE)         # from targets/<arch>/include
    list(APPEND roots "${up}" "${upup}")
  endforeach()
  list(APPEND roots /usr)
  _md_wheel_roots(wheel_roots "${wheel}")
  list(APPEND roots ${wheel_roots})
  list(REMOVE_DUPLICATES roots)

  foreach(root IN LISTS roots)
    foreach(inc IN ITEMS include include/x86_64-linux-gnu targets/x86_64-linux/include)
      if(NOT EXISTS "${root}/${inc}/${header}")
        continue()
      endif()
      foreach(libdir IN ITEMS lib64 lib lib/x86_64-linux-gnu targets/x86_64-linux/lib)
        set(cands "")
        if(EXISTS "${root}/${libdir}/${libbase}.so")
          list(APPEND cands "${root}/${libdir}/${libbase}.so")
        endif()
        file(GLOB versioned "${root}/${libdir}/${libbase}.so.[0-9]*")
        list(SORT versioned COMPARE NATURAL)  # libcudnn.so.9 before libcudnn.so.9.19.0
        list(APPEND cands ${versioned})
        if(cands)
          list(GET cands 0 lib)
          set(${pkg}_INCLUDE_DIR "${root}/${inc}" CACHE PATH "${pkg} include folder" FORCE)
          set(${pkg}_LIBRARY "${lib}" CACHE FILEPATH "${pkg} library" FORCE)
          if(explicit AND NOT root STREQUAL explicit)
            message(WARNING "${pkg}_ROOT=${explicit} holds no ${header} + ${libbase}.so[.N]; using ${root}")
          endif()
          return()
        endif()
      endforeach()
    endforeach()
  endforeach()
  string(REPLACE ";" ", " where "${roots}")
  message(STATUS "${pkg}: ${header} + ${libbase}.so[.N] not found under: ${where}")
endfunction()

# _md_header_version(out file KEY...): "MAJOR.MINOR.PATCH" from #define lines.
function(_md_header_version out file)
  set(parts "")
  foreach(key IN LISTS ARGN)
    file(STRINGS "${file}" line REGEX "^#define[ \t]+${key}[ \t]+[0-9]+")
    string(REGEX REPLACE "^#define[ \t]+${key}[ \t]+([0-9]+).*" "\\1" v "${line}")
    list(APPEND parts "${v}")
  endforeach()
  string(REPLACE ";" "." v "${parts}")
  set(${out} "${v}" PARENT_SCOPE)
endfunction()

# _md_import(PKG target version_file KEY...): CUDNN_FOUND/VERSION + the imported target.
macro(_md_import pkg target version_file)
  set(${pkg}_FOUND FALSE)
  if(${pkg}_INCLUDE_DIR AND ${pkg}_LIBRARY)
    _md_header_version(${pkg}_VERSION "${${pkg}_INCLUDE_DIR}/${version_file}" ${ARGN})
    set(${pkg}_FOUND TRUE)
    if(NOT TARGET ${target})
      add_library(${target} SHARED IMPORTED GLOBAL)
      set_target_properties(${target} PROPERTIES
        IMPORTED_LOCATION "${${pkg}_LIBRARY}" INTERFACE_INCLUDE_DIRECTORIES "${${pkg}_INCLUDE_DIR}")
      if(TARGET CUDA::cudart)
        set_property(TARGET ${target} PROPERTY INTERFACE_LINK_LIBRARIES CUDA::cudart)
      endif()
    endif()
    message(STATUS "${pkg} ${${pkg}_VERSION}: ${${pkg}_LIBRARY}")
  endif()
endmacro()

_md_find_cuda_lib(CUDNN cudnn.h libcudnn cudnn)
if(CUDNN_INCLUDE_DIR AND EXISTS "${CUDNN_INCLUDE_DIR}/cudnn_version.h")
  _md_import(CUDNN CUDNN::cudnn cudnn_version.h CUDNN_MAJOR CUDNN_MINOR CUDNN_PATCHLEVEL)
else()
  _md_import(CUDNN CUDNN::cudnn cudnn.h CUDNN_MAJOR CUDNN_MINOR CUDNN_PATCHLEVEL)
endif()

_md_find_cuda_lib(NCCL nccl.h libnccl nccl)
_md_import(NCCL NCCL::nccl nccl.h NCCL_MAJOR NCCL_MINOR NCCL_PATCH)
