import CGraphviz
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

    private let cache: Mutex<DrawingCache>

    /// `cacheBytes` bounds the cached drawings' total size (DOT and SVG text).
    public init(cacheBytes: Int = 24 << 20) {
        cache = Mutex(DrawingCache(capacity: cacheBytes))
    }

    /// The SVG drawing of `dot`, laid out with `dot` (the hierarchical layout).
    public func svg(for dot: String) async throws -> String {
        if let cached = cache.withLock({ $0[dot] }) { return cached }
        let svg = try await Self.thread.runIfActive { try Self.render(dot) }
        cache.withLock { $0[dot] = svg }
        return svg
    }

    /// Whether a drawing of `dot` is cached (for tests and measurements).
    public func isCached(_ dot: String) -> Bool { cache.withLock { $0[dot] != nil } }

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

/// A least-recently-used map from DOT text to SVG, bounded by the bytes of both.
struct DrawingCache {
    let capacity: Int
    private var entries: [String: (svg: String, used: UInt64)] = [:]
    private var clock: UInt64 = 0
    private(set) var bytes = 0

    init(capacity: Int) { self.capacity = capacity }

    subscript(dot: String) -> String? {
        mutating get {
            guard let entry = entries[dot] else { return nil }
            clock += 1
            entries[dot] = (entry.svg, clock)
            return entry.svg
        }
        set {
            if let old = entries.removeValue(forKey: dot) { bytes -= dot.utf8.count + old.svg.utf8.count }
            guard let newValue else { return }
            clock += 1
            entries[dot] = (newValue, clock)
            bytes += dot.utf8.count + newValue.utf8.count
            while bytes > capacity, entries.count > 1, let oldest = entries.min(by: { $0.value.used < $1.value.used }) {
                entries[oldest.key] = nil
                bytes -= oldest.key.utf8.count + oldest.value.svg.utf8.count
            }
        }
    }
}
