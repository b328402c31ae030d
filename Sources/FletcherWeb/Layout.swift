import FletcherDomain
import FletcherJSON
import Foundation

/// The frame every page shares: head, header with the breadcrumb, main.
enum Layout {
    /// One step of the breadcrumb; the last is the current page.
    struct Crumb {
        var title: String
        var href: String?
    }

    static func page(title: String, crumbs: [Crumb], assets: Assets, visitor: Visitor, body: HTML) -> HTML {
        let trail = crumbs.enumerated().map { offset, crumb -> HTML in
            if offset == crumbs.count - 1 { return "<li aria-current=\"page\">\(crumb.title)</li>" }
            return "<li><a href=\"\(crumb.href ?? "/")\">\(crumb.title)</a></li>"
        }
        let notice: HTML = visitor.notice.map { "<p class=\"notice\" role=\"status\">\($0)</p>" } ?? ""
        return """
            <!doctype html>
            <html lang="en">
            <head>
            <meta charset="utf-8">
            <meta name="viewport" content="width=device-width, initial-scale=1">
            <meta name="color-scheme" content="light dark">
            <title>\(title) · Fletcher</title>
            <link rel="stylesheet" href="\(assets.url("fletcher.css"))">
            <link rel="icon" href="\(assets.url("favicon.svg"))" type="image/svg+xml">
            <script src="\(assets.url("fletcher.js"))" defer></script>
            </head>
            <body>
            <a class="skip" href="#main">Skip to content</a>
            <header class="site">
            <a class="brand" href="/"><span aria-hidden="true">➶</span> Fletcher</a>
            <nav aria-label="Breadcrumb"><ol class="crumbs">\(trail)</ol></nav>
            \(account(visitor))
            </header>
            <main id="main">
            \(notice)
            \(body)
            </main>
            </body>
            </html>
            """
    }

    /// Who is signed in, with a sign-out button; or a sign-in link that comes back here.
    static func account(_ visitor: Visitor) -> HTML {
        guard let viewer = visitor.viewer else {
            let back = visitor.here.hasPrefix("/login") ? "" : query([("next", visitor.here)])
            return "<div class=\"account\"><a class=\"sign-in\" href=\"/login\(back)\">Sign in</a></div>"
        }
        return """
            <div class="account"><span class="signed-in">Signed in as <strong>\(viewer.service)</strong></span> \
            <form class="sign-out" method="post" action="/logout"><input type="hidden" name="csrf" value="\(viewer.formToken)">\
            <button type="submit">Sign out</button></form></div>
            """
    }

    /// A time as `<time>`, readable in UTC (the script shows it in the reader's zone).
    static func time(_ date: Date) -> HTML {
        let iso = RFC3339.string(date)
        return "<time datetime=\"\(iso)\">\(RFC3339.readable(date))</time>"
    }

    /// A state as a badge: colour and text, so colour is never the only signal.
    static func stateBadge(_ state: DataProductState) -> HTML {
        "<span class=\"badge state \(state.rawValue)\">\(state.rawValue)</span>"
    }
}

/// Times as the pages write them, digit by digit (a search page writes fifty, and Foundation's
/// format styles are a visible share of the server's time under the original's request mix).
enum RFC3339 {
    /// `2026-11-23T03:20:13.123Z`: milliseconds, which every browser's `Date` reads.
    static func string(_ date: Date) -> String {
        var bytes = stamp(date)
        if bytes.count == 27 { bytes.removeSubrange(23..<26) }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// `2026-11-23 03:20:13 UTC`.
    static func readable(_ date: Date) -> String {
        var bytes = stamp(date)
        guard bytes.count == 27 else { return String(decoding: bytes, as: UTF8.self) }
        bytes[10] = 0x20
        return String(decoding: bytes[0..<19], as: UTF8.self) + " UTC"
    }

    /// `2026-11-23T03:20:13.123456Z` (27 bytes for the years 0–9999).
    private static func stamp(_ date: Date) -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(27)
        JSONBytes.writeDate(date, to: &bytes)
        return bytes
    }
}
