// SPDX-License-Identifier: BSL-1.0
#ifndef MALLARD_DETAIL_ROUTE_PATTERN_HPP
#define MALLARD_DETAIL_ROUTE_PATTERN_HPP

// A parsed URL path pattern such as "/ws/chat/<room>" or "/items/<int:id>".
// Sans-I/O: parsing, matching and reversing are plain functions of strings,
// tested without sockets.

#include <boost/url/encode.hpp>
#include <boost/url/rfc/pchars.hpp>

#include <cctype>
#include <charconv>
#include <cstdint>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace mallard::detail {

enum class segment_kind { literal, string_param, int_param };

struct pattern_segment {
    segment_kind kind;
    std::string text; // the literal, or the parameter's name
};

inline bool is_identifier(std::string_view name)
{
    if (name.empty() || std::isdigit(static_cast<unsigned char>(name.front())))
        return false;
    for (char c : name)
        if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_')
            return false;
    return true;
}

/// Whether `text` is a decimal integer that fits in 64 bits.
inline bool is_int64(std::string_view text)
{
    std::int64_t value = 0;
    auto const* end = text.data() + text.size();
    auto [ptr, ec] = std::from_chars(text.data(), end, value);
    return !text.empty() && ec == std::errc{} && ptr == end;
}

class route_pattern {
public:
    /// Parses `pattern`; throws std::invalid_argument naming `route_name`.
    route_pattern(std::string_view pattern, std::string const& route_name)
        : text_(pattern)
    {
        auto fail = [&](std::string const& what) {
            throw std::invalid_argument("mallard::router: route \"" + route_name +
                                        "\" has pattern \"" + text_ + "\": " + what);
        };
        if (pattern.empty() || pattern.front() != '/')
            fail("a pattern must start with '/', as in \"/ws/echo\"");
        std::string_view rest = pattern.substr(1);
        while (!rest.empty() || !segments_.empty()) { // "/" alone has no segments
            auto const slash = rest.find('/');
            std::string_view segment = rest.substr(0, slash);
            parse_segment(segment, fail);
            if (slash == std::string_view::npos)
                break;
            rest = rest.substr(slash + 1);
        }
    }

    std::string const& text() const noexcept { return text_; }
    std::vector<pattern_segment> const& segments() const noexcept { return segments_; }

    /// The pattern with parameter names erased ("/ws/chat/<str>"): two
    /// patterns with the same shape match the same paths.
    std::string shape() const
    {
        std::string out;
        for (auto const& s : segments_) {
            out += '/';
            if (s.kind == segment_kind::literal)
                out += s.text;
            else
                out += s.kind == segment_kind::int_param ? "<int>" : "<str>";
        }
        return out;
    }

    /// Matches already percent-decoded path segments; fills `params` on success.
    bool match(std::vector<std::string> const& path_segments,
               std::map<std::string, std::string, std::less<>>& params) const
    {
        if (path_segments.size() != segments_.size())
            return false;
        for (std::size_t i = 0; i < segments_.size(); ++i) {
            auto const& want = segments_[i];
            auto const& got = path_segments[i];
            switch (want.kind) {
            case segment_kind::literal:
                if (got != want.text)
                    return false;
                break;
            case segment_kind::string_param:
                if (got.empty())
                    return false;
                break;
            case segment_kind::int_param:
                if (!is_int64(got))
                    return false;
                break;
            }
        }
        for (std::size_t i = 0; i < segments_.size(); ++i)
            if (segments_[i].kind != segment_kind::literal)
                params.insert_or_assign(segments_[i].text, path_segments[i]);
        return true;
    }

    /// Builds a path from parameter values, percent-encoding them; throws
    /// std::invalid_argument naming `route_name` for a missing, unknown or
    /// ill-typed parameter.
    std::string reverse(std::map<std::string, std::string, std::less<>> const& params,
                        std::string const& route_name) const
    {
        auto fail = [&](std::string const& what) {
            throw std::invalid_argument("mallard::router::reverse(\"" + route_name +
                                        "\"): " + what);
        };
        std::size_t used = 0;
        std::string out;
        for (auto const& s : segments_) {
            out += '/';
            if (s.kind == segment_kind::literal) {
                out += s.text;
                continue;
            }
            auto const found = params.find(s.text);
            if (found == params.end())
                fail("missing parameter \"" + s.text + "\" for pattern \"" + text_ + "\"");
            if (found->second.empty())
                fail("parameter \"" + s.text + "\" must not be empty");
            if (s.kind == segment_kind::int_param && !is_int64(found->second))
                fail("parameter \"" + s.text + "\" must be an integer, got \"" +
                     found->second + "\"");
            out += boost::urls::encode(found->second, boost::urls::pchars);
            ++used;
        }
        if (used != params.size())
            for (auto const& [name, value] : params)
                if (!has_param(name))
                    fail("pattern \"" + text_ + "\" has no parameter \"" + name + "\"");
        return out.empty() ? "/" : out;
    }

    bool has_param(std::string_view name) const
    {
        for (auto const& s : segments_)
            if (s.kind != segment_kind::literal && s.text == name)
                return true;
        return false;
    }

private:
    template <class Fail>
    void parse_segment(std::string_view segment, Fail const& fail)
    {
        if (segment.empty())
            fail("empty segment (\"//\" or a trailing '/')");
        if (segment.front() != '<') {
            if (segment.find_first_of("<>") != std::string_view::npos)
                fail("a parameter must be a whole segment, as in \"/<name>\"");
            segments_.push_back({segment_kind::literal, std::string(segment)});
            return;
        }
        if (segment.back() != '>')
            fail("parameter \"" + std::string(segment) + "\" lacks its closing '>'");
        std::string_view inner = segment.substr(1, segment.size() - 2);
        auto kind = segment_kind::string_param;
        if (auto const colon = inner.find(':'); colon != std::string_view::npos) {
            auto const type = inner.substr(0, colon);
            if (type == "int")
                kind = segment_kind::int_param;
            else if (type != "str")
                fail("unknown parameter type \"" + std::string(type) +
                     "\"; use <name>, <str:name> or <int:name>");
            inner = inner.substr(colon + 1);
        }
        if (!is_identifier(inner))
            fail("parameter name \"" + std::string(inner) +
                 "\" must be letters, digits and '_', not starting with a digit");
        if (has_param(inner))
            fail("parameter \"" + std::string(inner) + "\" appears twice");
        segments_.push_back({kind, std::string(inner)});
    }

    std::string text_;
    std::vector<pattern_segment> segments_;
};

} // namespace mallard::detail

#endif
