// SPDX-License-Identifier: BSL-1.0
/// @file
/// URL paths mapped to view factories.
#ifndef MALLARD_ROUTER_HPP
#define MALLARD_ROUTER_HPP

#include <mallard/detail/route_pattern.hpp>
#include <mallard/options.hpp>
#include <mallard/websocket_view.hpp>

#include <concepts>
#include <functional>
#include <initializer_list>
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

namespace mallard {

/// Path parameters by name, for `router::reverse`.
using path_params = std::map<std::string, std::string, std::less<>>;

namespace detail {
struct route_access;
} // namespace detail

/** One URL pattern bound to a view factory, with its resolved limits.

    Made by `mallard::path`; see there.
*/
class route {
public:
    /// Makes a new view for each accepted upgrade.
    using factory_type = std::function<std::unique_ptr<websocket_view>()>;

    /// The pattern as written, e.g. "/ws/chat/<room>".
    std::string const& pattern() const noexcept { return pattern_.text(); }
    /// The name `router::reverse` knows it by; may be empty.
    std::string const& name() const noexcept { return name_; }
    /// Limits for connections on this route: route > view > library default.
    connection_limits const& limits() const noexcept { return limits_; }
    /// Whether a browser from `origin` may connect (an empty origin: not a browser).
    bool allows_origin(std::string_view origin) const
    {
        if (rules_.allowed_origins.empty() || origin.empty())
            return true;
        for (auto const& allowed : rules_.allowed_origins)
            if (allowed == origin)
                return true;
        return false;
    }

    /// Subprotocols spoken, most preferred first.
    std::vector<std::string> const& subprotocols() const noexcept { return rules_.subprotocols; }
    /// Whether an upgrade must agree on one of `subprotocols()`.
    bool require_subprotocol() const noexcept { return rules_.require_subprotocol; }
    /// Whether each upgrade asks the view's `on_upgrade` (bounded by the
    /// handshake timeout). False when the route knows the view keeps
    /// websocket_view's, which accepts: a `path<View>` whose View does not
    /// override it, or a factory returning `std::unique_ptr<V>` of a `final`
    /// V that does not.
    bool asks_on_upgrade() const noexcept { return rules_.asks_view; }

    /// Makes the view for one new connection.
    std::unique_ptr<websocket_view> make_view() const { return factory_(); }

private:
    friend struct detail::route_access;

    route(std::string_view pattern, std::string name, factory_type factory,
          connection_limits limits, detail::upgrade_rules rules)
        : pattern_(pattern, name)
        , name_(std::move(name))
        , factory_(std::move(factory))
        , limits_(limits)
        , rules_(std::move(rules))
    {
    }

    detail::route_pattern pattern_;
    std::string name_;
    factory_type factory_;
    connection_limits limits_;
    detail::upgrade_rules rules_;
};

namespace detail {
/// Makes routes (for mallard::path) and shows the router their parsed patterns.
struct route_access {
    static route make(std::string_view pattern, std::string name, route::factory_type factory,
                      connection_limits limits, upgrade_rules rules)
    {
        return route(pattern, std::move(name), std::move(factory), limits, std::move(rules));
    }
    static route_pattern const& parsed(route const& r) noexcept { return r.pattern_; }
};

template <class T>
struct is_view_pointer : std::false_type {
    using view = websocket_view;
};
template <class V>
struct is_view_pointer<std::unique_ptr<V>> : std::is_base_of<websocket_view, V> {
    using view = V;
};

/// Whether View's on_upgrade is websocket_view's own: `&View::on_upgrade`
/// has type "member of websocket_view" unless View or a class between
/// declares one. (Comparing the pointers themselves is unspecified for
/// virtual functions; their types are exact.)
template <class View>
constexpr bool keeps_default_upgrade_hook =
    std::is_same_v<decltype(&View::on_upgrade), task<upgrade_decision> (websocket_view::*)()>;

inline std::string describe_route(std::string_view pattern, std::string const& name)
{
    return "mallard::path(\"" + std::string(pattern) + "\", \"" + name + "\")";
}
} // namespace detail

/** A route to a default-constructible view type.

    @param pattern Literal segments, `<name>` (any non-empty segment) and
    `<int:name>` (a 64-bit integer), e.g. "/ws/chat/<room>".
    @param name The name for `router::reverse`.
    @param options Overrides of the view's class-level options.
    @throws std::invalid_argument for a malformed pattern or an invalid option.
*/
template <class View>
route path(std::string_view pattern, std::string name, route_options const& options = {})
{
    static_assert(std::is_base_of_v<websocket_view, View>,
                  "mallard::path<View>: View must derive publicly from mallard::websocket_view");
    static_assert(std::is_default_constructible_v<View>,
                  "mallard::path<View>: View needs a default constructor; to pass it arguments, "
                  "register a factory: mallard::path(pattern, [&] { return "
                  "std::make_unique<View>(args...); }, name)");
    auto const where = detail::describe_route(pattern, name);
    auto limits = detail::resolve_limits<View>(options, where);
    auto rules = detail::resolve_upgrade_rules<View>(options, where);
    rules.asks_view = !detail::keeps_default_upgrade_hook<View>; // View is what is made
    return detail::route_access::make(pattern, std::move(name),
                                      [] { return std::make_unique<View>(); }, limits,
                                      std::move(rules));
}

/** A route to a view made by `factory`, for views that need shared state.

    @param factory Callable with no arguments returning
    `std::unique_ptr<V>`, V derived from websocket_view; V's class-level
    options apply. Called on the connection's thread, once per connection.
*/
template <class Factory>
    requires std::invocable<Factory&>
route path(std::string_view pattern, Factory factory, std::string name,
           route_options const& options = {})
{
    using result = std::invoke_result_t<Factory&>;
    static_assert(detail::is_view_pointer<result>::value,
                  "mallard::path(pattern, factory, name): the factory must return "
                  "std::unique_ptr<View> with View derived from mallard::websocket_view");
    using View = typename detail::is_view_pointer<result>::view;
    auto const where = detail::describe_route(pattern, name);
    auto limits = detail::resolve_limits<View>(options, where);
    auto rules = detail::resolve_upgrade_rules<View>(options, where);
    // The factory may return a class derived from View that has a hook of
    // its own, unless View is final.
    rules.asks_view = !(std::is_final_v<View> && detail::keeps_default_upgrade_hook<View>);
    return detail::route_access::make(
        pattern, std::move(name),
        [f = std::move(factory)]() mutable -> std::unique_ptr<websocket_view> { return f(); },
        limits, std::move(rules));
}

/** Maps URL paths to views. Routes are tried in the order they were added.

    @par Example
    @code
    mallard::router urls{
        mallard::path<echo_view>("/ws/echo", "echo"),
        mallard::path<chat_view>("/ws/chat/<room>", "chat"),
    };
    urls.reverse("chat", {{"room", "lobby"}});   // "/ws/chat/lobby"
    @endcode

    @par Thread safety
    Build it before the server runs; the server reads it from many threads.
*/
class router {
public:
    router() = default;

    /// @throws std::invalid_argument for a duplicate name or pattern.
    router(std::initializer_list<route> routes)
    {
        for (auto const& r : routes)
            add(r);
    }

    /// Adds a route after the existing ones.
    /// @throws std::invalid_argument for a duplicate name or pattern.
    router& add(route r)
    {
        for (auto const& existing : routes_) {
            if (!r.name().empty() && r.name() == existing.name())
                throw std::invalid_argument(
                    "mallard::router: route name \"" + r.name() + "\" is used by both \"" +
                    existing.pattern() + "\" and \"" + r.pattern() +
                    "\"; give each route its own name");
            if (parsed(r).shape() == parsed(existing).shape())
                throw std::invalid_argument(
                    "mallard::router: pattern \"" + r.pattern() + "\" of route \"" + r.name() +
                    "\" matches the same paths as \"" + existing.pattern() + "\" of route \"" +
                    existing.name() + "\"; remove one of them");
        }
        routes_.push_back(std::move(r));
        return *this;
    }

    /** The path of the route named `name` with `params` filled in and
        percent-encoded.

        @throws std::invalid_argument for an unknown name, or a missing,
        unknown or ill-typed parameter.
    */
    std::string reverse(std::string_view name, path_params const& params = {}) const
    {
        for (auto const& r : routes_)
            if (!r.name().empty() && r.name() == name)
                return parsed(r).reverse(params, r.name());
        throw std::invalid_argument("mallard::router::reverse: no route is named \"" +
                                    std::string(name) + "\"");
    }

    /// The first route matching the percent-decoded `segments`, with its parameters.
    route const* match(std::vector<std::string> const& segments, path_params& params) const
    {
        for (auto const& r : routes_) {
            params.clear();
            if (parsed(r).match(segments, params))
                return &r;
        }
        params.clear();
        return nullptr;
    }

    /// The routes, in the order they were given (the order they are matched in).
    std::vector<route> const& routes() const noexcept { return routes_; }

private:
    static detail::route_pattern const& parsed(route const& r) noexcept
    {
        return detail::route_access::parsed(r);
    }

    std::vector<route> routes_;
};

} // namespace mallard

#endif
