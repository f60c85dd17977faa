/* Which sanitizers and tools this translation unit is built for. */
#ifndef IOU_SANITIZER_H
#define IOU_SANITIZER_H

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define IOU_ASAN 1
#endif
#if __has_feature(thread_sanitizer)
#define IOU_TSAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__) && !defined(IOU_ASAN)
#define IOU_ASAN 1
#endif
#if defined(__SANITIZE_THREAD__) && !defined(IOU_TSAN)
#define IOU_TSAN 1
#endif

#if defined(IOU_ASAN)
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#endif
#if defined(IOU_TSAN)
#include <sanitizer/tsan_interface.h>
#endif

#if defined(__has_include)
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#define IOU_VALGRIND 1
#endif
#endif

#endif
