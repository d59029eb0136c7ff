# Build-time plan for the LibTorch translation units (see docs/building.md).
#
# Loading the <torch/torch.h> precompiled header costs about 9 s per translation unit on our
# 2-core machines (it is a 570 MB file), and compiling a LibTorch TU another 10-20 s. So:
#   * a source that does not include LibTorch (directly or through our headers) skips the PCH
#     and compiles in a second or two;
#   * sources that do include it are compiled in unity batches of VARDP_UNITY_BATCH files, which
#     pays the PCH load and the common template instantiations once per batch.
# Both only change build speed: a wrong guess still compiles, it is just slower.

option(VARDP_UNITY_BUILD "Compile LibTorch sources in unity batches (fresh builds ~2x faster)" ON)
set(VARDP_UNITY_BATCH 4 CACHE STRING "LibTorch sources per unity batch")

# TRUE when `file` includes <torch/...>, <ATen/...> or <c10/...>, directly or through a header
# of this project (resolved next to the file, in include/ or in src/). Results are memoised.
function(vardp_uses_torch file out_var)
  string(MD5 key "${file}")
  get_property(known GLOBAL PROPERTY VARDP_TORCH_${key} SET)
  if(known)
    get_property(result GLOBAL PROPERTY VARDP_TORCH_${key})
    set(${out_var} ${result} PARENT_SCOPE)
    return()
  endif()
  # Marked FALSE while being scanned, which also ends include cycles.
  set_property(GLOBAL PROPERTY VARDP_TORCH_${key} FALSE)
  set(result FALSE)
  get_filename_component(dir "${file}" DIRECTORY)
  file(STRINGS "${file}" lines REGEX "^[ \t]*#[ \t]*include[ \t]*[<\"]")
  foreach(line IN LISTS lines)
    if(NOT line MATCHES "[<\"]([^>\"]+)[>\"]")
      continue()
    endif()
    set(name "${CMAKE_MATCH_1}")
    if(name MATCHES "^(torch|ATen|c10)/")
      set(result TRUE)
      break()
    endif()
    foreach(base "${dir}" "${PROJECT_SOURCE_DIR}/include" "${PROJECT_SOURCE_DIR}/src")
      if(EXISTS "${base}/${name}" AND NOT IS_DIRECTORY "${base}/${name}")
        get_filename_component(header "${base}/${name}" ABSOLUTE)
        vardp_uses_torch("${header}" header_uses_torch)
        if(header_uses_torch)
          set(result TRUE)
        endif()
        break()
      endif()
    endforeach()
    if(result)
      break()
    endif()
  endforeach()
  set_property(GLOBAL PROPERTY VARDP_TORCH_${key} ${result})
  set(${out_var} ${result} PARENT_SCOPE)
endfunction()

# Applies the plan to `target`'s C++ sources: the PCH only where LibTorch is used, and the
# LibTorch sources in unity groups of VARDP_UNITY_BATCH (other sources compile on their own).
function(vardp_fast_build target)
  get_target_property(sources ${target} SOURCES)
  get_target_property(source_dir ${target} SOURCE_DIR)
  set(torch_sources "")
  foreach(src IN LISTS sources)
    if(NOT src MATCHES "\\.(cpp|cc|cxx)$")
      continue()
    endif()
    get_filename_component(path "${src}" ABSOLUTE BASE_DIR "${source_dir}")
    vardp_uses_torch("${path}" uses_torch)
    if(uses_torch)
      list(APPEND torch_sources "${src}")
    else()
      set_source_files_properties("${src}" PROPERTIES SKIP_PRECOMPILE_HEADERS ON)
    endif()
  endforeach()
  if(NOT VARDP_UNITY_BUILD OR NOT torch_sources)
    return()
  endif()
  list(SORT torch_sources)
  set(index 0)
  foreach(src IN LISTS torch_sources)
    math(EXPR group "${index} / ${VARDP_UNITY_BATCH}")
    set_source_files_properties("${src}" PROPERTIES UNITY_GROUP "${target}_${group}")
    math(EXPR index "${index} + 1")
  endforeach()
  set_target_properties(${target} PROPERTIES UNITY_BUILD ON UNITY_BUILD_MODE GROUP)
endfunction()
