// SPDX-License-Identifier: BSL-1.0
#ifndef MALLARD_DETAIL_HTTP_STATIC_FILES_HPP
#define MALLARD_DETAIL_HTTP_STATIC_FILES_HPP

// Maps a request path to a file under a folder, refusing anything that could
// leave it: "..", "." and empty segments, separators hidden in a
// percent-encoded segment ("%2F", "%2e%2e" arrive here decoded), NUL bytes,
// and symbolic links that point outside. Sans-I/O but for the file system.

#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

namespace mallard::detail {

/// The content type for a file name's extension; octet-stream when unknown.
inline std::string_view content_type_for(std::filesystem::path const& file)
{
    auto const ext = file.extension().string();
    struct entry {
        std::string_view ext, type;
    };
    static constexpr entry types[] = {
        {".html", "text/html; charset=utf-8"},
        {".htm", "text/html; charset=utf-8"},
        {".css", "text/css; charset=utf-8"},
        {".js", "text/javascript; charset=utf-8"},
        {".mjs", "text/javascript; charset=utf-8"},
        {".json", "application/json"},
        {".txt", "text/plain; charset=utf-8"},
        {".svg", "image/svg+xml"},
        {".png", "image/png"},
        {".jpg", "image/jpeg"},
        {".jpeg", "image/jpeg"},
        {".gif", "image/gif"},
        {".ico", "image/vnd.microsoft.icon"},
        {".webp", "image/webp"},
        {".woff2", "font/woff2"},
        {".wasm", "application/wasm"},
    };
    for (auto const& [known, type] : types)
        if (ext == known)
            return type;
    return "application/octet-stream";
}

/// Whether `inner` is `outer` or lies below it; both canonical.
inline bool is_within(std::filesystem::path const& outer, std::filesystem::path const& inner)
{
    auto o = outer.begin();
    auto i = inner.begin();
    for (; o != outer.end(); ++o, ++i)
        if (i == inner.end() || *o != *i)
            return false;
    return true;
}

/** The regular file that percent-decoded `segments` name under `root`
    (canonical), `index.html` for a folder; nothing when refused or missing.
*/
inline std::optional<std::filesystem::path>
resolve_static_file(std::filesystem::path const& root, std::vector<std::string> const& segments)
{
    namespace fs = std::filesystem;
    fs::path candidate = root;
    for (std::size_t i = 0; i < segments.size(); ++i) {
        auto const& s = segments[i];
        if (s.empty() && i + 1 == segments.size())
            break; // a trailing '/': the folder itself
        if (s.empty() || s == "." || s == ".." ||
            s.find_first_of(std::string_view("/\\\0", 3)) != std::string::npos)
            return std::nullopt;
        candidate /= s;
    }
    std::error_code ec;
    if (fs::is_directory(candidate, ec))
        candidate /= "index.html";
    auto const real = fs::canonical(candidate, ec); // resolves every symbolic link
    if (ec || !is_within(root, real) || !fs::is_regular_file(real, ec))
        return std::nullopt;
    return real;
}

} // namespace mallard::detail

#endif
