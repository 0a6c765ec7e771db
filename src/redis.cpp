// SPDX-License-Identifier: BSL-1.0
// mallard::compiled_redis: the Redis backplane.
#include <mallard/src_redis.hpp>
