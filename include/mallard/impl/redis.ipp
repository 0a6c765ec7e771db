// SPDX-License-Identifier: BSL-1.0
#ifndef MALLARD_IMPL_REDIS_IPP
#define MALLARD_IMPL_REDIS_IPP

#include <mallard/detail/redis/backplane.hpp>
#include <mallard/redis.hpp>

#include <memory>
#include <utility>

namespace mallard {

MALLARD_DECL std::shared_ptr<backplane> make_redis_backplane(redis_options options)
{
    return std::make_shared<detail::redis_backplane>(std::move(options));
}

MALLARD_DECL std::shared_ptr<backplane> make_redis_backplane(std::string_view url)
{
    return make_redis_backplane(redis_options::from_url(url));
}

} // namespace mallard

#endif
