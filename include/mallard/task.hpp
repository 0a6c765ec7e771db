// SPDX-License-Identifier: BSL-1.0
/// @file
/// The coroutine type of view callbacks.
#ifndef MALLARD_TASK_HPP
#define MALLARD_TASK_HPP

#include <boost/asio/awaitable.hpp>

namespace mallard {

/** The coroutine type of every view callback and spawned task.

    An alias, so any Asio awaitable operation can be `co_await`ed inside a
    view, and a `mallard::task<T>` can be awaited from any Asio coroutine.
*/
template <class T = void>
using task = boost::asio::awaitable<T>;

} // namespace mallard

#endif
