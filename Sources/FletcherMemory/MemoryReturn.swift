#if canImport(Glibc)
import CMalloc
#endif
import Foundation
public import ServiceLifecycle

/// Makes the C allocator give memory back to the system when it is freed.
///
/// glibc serves a block above its mmap threshold (128 KiB at first) with a mapping of its own,
/// unmapped on free — but each time such a block is freed it raises the threshold to that block's
/// size (up to 32 MiB), and from then on blocks that big come from the heap arenas, which keep
/// their pages after they are freed: after a few big plans the resident set stays at its peak for
/// good. With the threshold fixed, blocks above it always get their own mapping and the resident
/// set follows what the process holds. Fixed at 4 MiB: lower, and blocks that are allocated and
/// freed on every request are mapped and faulted in anew each time — a plan page's HTML (about
/// 150 KB) below 128 KiB's threshold, a 10,000-product plan's rows, copied by each of its
/// updates, below 1 MiB's. An operator's own `MALLOC_MMAP_THRESHOLD_` wins.
public enum MemoryReturn {
    /// The threshold fixed.
    public static let mmapThreshold: Int32 = 4 << 20
    /// Free memory at a heap's top beyond this goes back to the system: twice the mmap threshold,
    /// as glibc keeps it when it moves the threshold itself. A lower one gives each request's
    /// buffers back and faults them in again on the next request.
    public static let trimThreshold: Int32 = 8 << 20

    /// Fixes both thresholds (once, at start-up, before the server allocates much); false where
    /// there is nothing to do (not glibc, or the operator set the mmap threshold).
    @discardableResult
    public static func configure(environment: [String: String]) -> Bool {
        #if canImport(Glibc)
        guard environment["MALLOC_MMAP_THRESHOLD_"] == nil else { return false }
        // Fixing one threshold stops glibc from moving the other: both are set.
        return mallopt(M_MMAP_THRESHOLD, mmapThreshold) == 1 && mallopt(M_TRIM_THRESHOLD, trimThreshold) == 1
        #else
        return false
        #endif
    }

    /// Bytes the allocator has handed out and not had back (nil where unknown): in its heaps and in
    /// mappings of their own.
    public static var inUse: Int? {
        #if canImport(Glibc)
        Int(fletcher_malloc_in_use_bytes())
        #else
        nil
        #endif
    }

    /// The process's resident set in bytes, and the part of it not backed by files (nil where
    /// unknown): one small read of `/proc/self/statm`.
    public static var resident: (total: Int, anonymous: Int)? {
        #if canImport(Glibc)
        guard let statm = try? String(contentsOfFile: "/proc/self/statm", encoding: .ascii) else { return nil }
        let fields = statm.split(separator: " ")
        guard fields.count > 2, let pages = Int(fields[1]), let shared = Int(fields[2]) else { return nil }
        let pageSize = Int(sysconf(Int32(_SC_PAGESIZE)))
        return (pages * pageSize, (pages - shared) * pageSize)
        #else
        nil
        #endif
    }

    /// Resident memory not backed by files that the allocator has not handed out (nil where
    /// unknown): free blocks whose pages are still resident, plus what is not the allocator's
    /// (thread stacks, its own bookkeeping) — minus pages of handed-out blocks never touched.
    public static var residentNotInUse: Int? {
        guard let anonymous = resident?.anonymous, let inUse else { return nil }
        return anonymous - inUse
    }

    /// Gives the pages of free memory inside the heaps back to the system: every arena's free blocks
    /// and the main heap's top. (Other arenas' tops are kept up to the trim threshold; handed-out
    /// blocks whose pages were never touched count as in use, so a request's untouched reserves
    /// can make one trim find little to give back.) Its cost grows with the heaps — each arena's
    /// lock is held while its free blocks are walked — so it is not called on a request's path.
    public static func trim() {
        #if canImport(Glibc)
        malloc_trim(0)
        #endif
    }
}

/// Gives back memory freed in the middle of the allocator's heaps, which glibc only returns from a
/// heap's top: many small blocks (a big plan's strings and JSON values, the rows of requests) freed
/// around ones still in use stay resident: after big plans are submitted, resubmitted, read and
/// updated, the server stays far above what it holds.
///
/// Watches the resident memory the allocator has not handed out (`MemoryReturn.residentNotInUse`):
/// when it has grown by `threshold` since the last trim (or its lowest point since), trims, and
/// takes what is left after the trim as the new mark. Counting the allocator's free bytes instead
/// would miss free memory that a trim gave back and a later request touched and freed again: the
/// count of free bytes stays the same while their pages come back (as when the plan cache drops
/// plans for a big submission), and that memory would stay resident beside the next big plan's.
///
/// Asking glibc what it has handed out (`mallinfo2`) walks every arena's free lists under its lock —
/// milliseconds with a busy server's heaps, a stall for any allocation behind the lock. So the
/// resident set, cheap to read, is looked at once a second, and the allocator only when it has
/// moved by `residentStep` since it was last asked, or `backstop` seconds after: memory freed while the resident set
/// stays put (a big request's, at its end) is trimmed within that.
public struct MemoryTrimmer: Sendable {
    /// Resident memory not in use worth a trim.
    public static let threshold = 16 << 20
    /// A change of the resident set that is worth asking the allocator again.
    public static let residentStep = 4 << 20
    /// Looks after which the allocator is asked however still the resident set is.
    public static let backstop = 15
    /// Resident memory not in use after the last trim, or lower since.
    private var mark: Int?
    private var residentAsked: Int?
    private var looksSinceAsked = 0

    public init() {}

    /// Whether to ask the allocator what it has handed out, given the resident set now (once a second);
    /// always where the resident set is unknown.
    public mutating func shouldAsk(resident: Int?) -> Bool {
        looksSinceAsked += 1
        if let resident, let asked = residentAsked, abs(resident - asked) < Self.residentStep, looksSinceAsked < Self.backstop {
            return false
        }
        residentAsked = resident
        looksSinceAsked = 0
        return true
    }

    /// Whether to trim, given the resident memory the allocator has not handed out: `threshold`
    /// more than the mark (at the first look, `threshold` in all). Below the mark, it becomes the
    /// mark.
    public mutating func shouldTrim(notInUse: Int) -> Bool {
        guard let mark else {
            // The first look: what start-up freed is due if it is worth a trim.
            mark = notInUse
            return notInUse >= Self.threshold
        }
        guard notInUse - mark >= Self.threshold else {
            self.mark = min(mark, notInUse)
            return false
        }
        return true
    }

    /// One look (the service makes one a second): asks the allocator when the resident set says so
    /// (`shouldAsk`), trims when that is due (`shouldTrim`), and marks what the trim left. True
    /// when it trimmed.
    public mutating func look(resident: Int?, notInUse: () -> Int?, trim: () -> Void) -> Bool {
        guard shouldAsk(resident: resident), let now = notInUse(), shouldTrim(notInUse: now) else { return false }
        trim()
        if let left = notInUse() { trimmed(notInUse: left) }
        return true
    }

    /// After a trim: what it left is the mark (free blocks too small to give a page back, and
    /// memory that is not the allocator's, stay).
    public mutating func trimmed(notInUse: Int) {
        mark = notInUse
    }
}

/// Runs the `MemoryTrimmer` once a second until the server shuts down.
public struct MemoryTrimService: Service {
    public init() {}

    public func run() async throws {
        // A service that returns early ends the server: without glibc there is nothing to watch,
        // so it only waits for the shutdown.
        guard MemoryReturn.residentNotInUse != nil else { return try await gracefulShutdown() }
        // Ends (the sleep cancelled) when the server starts shutting down.
        try? await cancelWhenGracefulShutdown {
            var trimmer = MemoryTrimmer()
            while true {
                try await Task.sleep(for: .seconds(1))
                _ = trimmer.look(
                    resident: MemoryReturn.resident?.total, notInUse: { MemoryReturn.residentNotInUse }, trim: MemoryReturn.trim)
            }
        }
    }
}
