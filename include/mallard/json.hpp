// SPDX-License-Identifier: BSL-1.0
/// @file
/// JSON values as messages (Boost.JSON; CMake target mallard::json).
#ifndef MALLARD_JSON_HPP
#define MALLARD_JSON_HPP

/*  Sending and publishing Boost.JSON values as text messages. In a header of
    its own, so that programs without Boost.JSON do not compile or link it:
    CMake target mallard::json (Boost::json).

    @par g++ 12 and JSON in coroutines
    g++ 12 miscompiles a braced initializer list of Boost.JSON values inside
    a coroutine ("array used as initializer", or a wrong value at run time):
    build the value in a plain function and pass it in.
    @code
    boost::json::object greeting(std::string const& name)   // a plain function
    {
        return {{"type", "hello"}, {"name", name}};
    }

    mallard::task<> on_open() override
    {
        co_await mallard::send_json(*this, greeting("ada"));
    }
    @endcode
*/

#include <mallard/connection.hpp>
#include <mallard/send_status.hpp>
#include <mallard/server.hpp>
#include <mallard/task.hpp>
#include <mallard/websocket_view.hpp>

#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>

#include <cstddef>
#include <string>

namespace mallard {

/// Sends `value` to the view's client as one text message; as
/// `websocket_view::send_text`.
inline task<send_status> send_json(websocket_view& view, boost::json::value const& value)
{
    return view.send_text(boost::json::serialize(value));
}

/// Queues `value` for the connection's client as one text message; as
/// `connection::send_text`, from any thread.
inline send_status send_json(connection const& to, boost::json::value const& value)
{
    return to.send_text(boost::json::serialize(value));
}

/// Publishes `value` to `group` as one text message, serialized once for
/// every member; as `websocket_view::publish`.
inline std::size_t publish_json(websocket_view& view, std::string const& group,
                                boost::json::value const& value,
                                audience to = audience::everyone)
{
    return view.publish(group, boost::json::serialize(value), opcode::text, to);
}

/// Publishes `value` to `group` from outside any view; as `server::publish`.
inline std::size_t publish_json(server& from, std::string const& group,
                                boost::json::value const& value)
{
    return from.publish(group, boost::json::serialize(value), opcode::text);
}

} // namespace mallard

#endif
