// SPDX-License-Identifier: BSL-1.0
#ifndef MALLARD_SRC_REDIS_HPP
#define MALLARD_SRC_REDIS_HPP

/*  The compiled part of <mallard/redis.hpp> (groups across processes over
    Redis, hiredis), for separate compilation: include it in one translation
    unit beside <mallard/src.hpp> (the CMake target mallard::compiled_redis
    does so for you).
*/

#include <mallard/detail/config.hpp>

#ifndef MALLARD_SEPARATE_COMPILATION
#error "<mallard/src_redis.hpp> is for separate compilation: define MALLARD_SEPARATE_COMPILATION for every translation unit of the program"
#endif

#include <mallard/impl/redis.ipp>

#endif
