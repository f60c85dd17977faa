# Extracts the README's quick start so the test builds exactly what users read.
# Usage: cmake -DREADME=path/README.md -DOUT=path/quickstart.c -P readme_quickstart.cmake
# Takes the first ```c fenced block after the line <!-- quickstart -->.
if(NOT DEFINED README OR NOT DEFINED OUT)
  message(FATAL_ERROR "usage: cmake -DREADME=<README.md> -DOUT=<file.c> -P readme_quickstart.cmake")
endif()
if(NOT EXISTS "${README}")
  message(FATAL_ERROR "quickstart: ${README} does not exist")
endif()

file(READ "${README}" text)
string(REPLACE "\r\n" "\n" text "${text}")

set(marker "\n<!-- quickstart -->\n")
string(FIND "\n${text}" "${marker}" at)
if(at EQUAL -1)
  message(FATAL_ERROR "quickstart: no line '<!-- quickstart -->' in ${README}")
endif()
string(LENGTH "${marker}" marker_len)
math(EXPR at "${at} + ${marker_len} - 1")
string(SUBSTRING "${text}" ${at} -1 text)

# The opening fence must be exactly ```c at the start of a line (not ```cpp).
set(open "\n```c\n")
string(FIND "\n${text}" "${open}" at)
if(at EQUAL -1)
  message(FATAL_ERROR "quickstart: no ```c block after '<!-- quickstart -->' in ${README}")
endif()
string(LENGTH "${open}" open_len)
math(EXPR at "${at} + ${open_len} - 1")
string(SUBSTRING "${text}" ${at} -1 text)

# The closing fence: ``` at the start of a line. The code keeps its last newline.
string(FIND "\n${text}" "\n```" end)
if(end EQUAL -1)
  message(FATAL_ERROR "quickstart: the ```c block after '<!-- quickstart -->' is not closed in ${README}")
endif()
string(SUBSTRING "${text}" 0 ${end} code)

string(STRIP "${code}" stripped)
if(stripped STREQUAL "")
  message(FATAL_ERROR "quickstart: the ```c block after '<!-- quickstart -->' is empty")
endif()

file(WRITE "${OUT}" "${code}")
