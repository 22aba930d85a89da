# Prints the size of a built (stripped) binary: cmake -DFILE=path -P print-size.cmake
file(SIZE "${FILE}" size)
math(EXPR kib "${size} / 1024")
get_filename_component(name "${FILE}" NAME)
message(STATUS "edgegw: ${name} is ${size} bytes (${kib} KiB), static and stripped")
