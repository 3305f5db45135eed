# cmake -DEXE=ghlua "-DARGS=arg;..." -DOUT=file -P ghlua_output.cmake
# Run the just-built ghlua and keep what it prints in OUT (the man page and
# the completion scripts are generated this way, so they match the binary).
# Leak checks are off: this is a build step, the test suite checks leaks.
execute_process(COMMAND ${CMAKE_COMMAND} -E env --unset=GHLUA_LUA_DIR ASAN_OPTIONS=detect_leaks=0 ${EXE} ${ARGS}
  OUTPUT_FILE ${OUT}.tmp RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  file(REMOVE ${OUT}.tmp)
  message(FATAL_ERROR "${EXE} ${ARGS} failed: ${rc}")
endif()
file(RENAME ${OUT}.tmp ${OUT})
