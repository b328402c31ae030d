import CGraphviz
import FletcherStore
import Foundation
import NIOPosix
import Synchronization

/// Lays out and draws DOT graphs as SVG with Graphviz's C library.
///
/// libgvc keeps global state and is not thread-safe: every call, from every renderer in the
/// process, runs on one dedicated thread, one at a time — which also keeps slow layouts off the
/// event loops and Swift's cooperative threads. Drawings are cached by their DOT text, so a plan
/// that has not changed is never laid out twice.
public final class GraphvizRenderer: Sendable {
    /// The one thread all Graphviz calls of the process run on, and the context it owns.
    private static let thread: NIOThreadPool = {
        let pool = NIOThreadPool(numberOfThreads: 1)
        pool.start()
        return pool
    }()
    private static let context = Mutex<OpaquePointer?>(nil)

    /// SVG drawings by their DOT text, bounded by the bytes of both.
    private let cache: Mutex<LeastRecentlyUsed<String, String>>

    /// `cacheBytes` bounds the cached drawings' total size (DOT and SVG text).
    public init(cacheBytes: Int = 24 << 20) {
        cache = Mutex(LeastRecentlyUsed(capacity: cacheBytes))
    }

    /// The SVG drawing of `dot`, laid out with `dot` (the hierarchical layout).
    public func svg(for dot: String) async throws -> String {
        if let cached = cache.withLock({ $0[dot] }) { return cached }
        let svg = try await Self.thread.runIfActive { try Self.render(dot) }
        cache.withLock { _ = $0.store(svg, cost: dot.utf8.count + svg.utf8.count, for: dot) }
        return svg
    }

    /// Whether a drawing of `dot` is cached (for tests and measurements).
    public func isCached(_ dot: String) -> Bool { cache.withLock { $0.peek(dot) != nil } }

    /// Runs on the Graphviz thread only.
    private static func render(_ dot: String) throws -> String {
        let gvc: OpaquePointer = context.withLock { context in
            if let context { return context }
            agseterr(AGMAX)  // errors become exceptions below, not stderr noise
            let created = gvContext()!
            context = created
            return created
        }
        guard let graph = agmemread(dot) else { throw GraphvizError.invalidDOT }
        defer { agclose(graph) }
        guard gvLayout(gvc, graph, "dot") == 0 else { throw GraphvizError.layoutFailed }
        defer { gvFreeLayout(gvc, graph) }
        var data: UnsafeMutablePointer<CChar>?
        var length: UInt32 = 0
        guard gvRenderData(gvc, graph, "svg", &data, &length) == 0, let data else { throw GraphvizError.renderFailed }
        defer { gvFreeRenderData(data) }
        return String(decoding: UnsafeRawBufferPointer(start: data, count: Int(length)), as: UTF8.self)
    }
}

public enum GraphvizError: Error {
    case invalidDOT, layoutFailed, renderFailed
}
