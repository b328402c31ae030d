#if canImport(Glibc)
import Glibc
#endif

/// Makes the C allocator give big blocks back to the system when they are freed.
///
/// glibc serves a block above its mmap threshold (128 KiB at first) with a mapping of its own,
/// unmapped on free — but each time such a block is freed it raises the threshold to that block's
/// size (up to 32 MiB), and from then on blocks that big come from the heap arenas, which keep
/// their pages after they are freed. Submitting, resubmitting and reading a 100,000-product plan
/// left the server at 370 MB resident for good. With the threshold fixed, blocks above it always
/// get their own mapping and the resident set follows what the process holds. Fixed at 4 MiB: at
/// glibc's initial 128 KiB, a plan page's HTML (about 150 KB) was mapped and faulted in anew for
/// each page (the request mix lost about 6 %), and at 1 MiB a 10,000-product plan's rows, copied
/// by each of its updates, were (its update's median 11 → 13–15 ms). An operator's own
/// `MALLOC_MMAP_THRESHOLD_` wins.
public enum MemoryReturn {
    /// The threshold fixed.
    public static let mmapThreshold: Int32 = 4 << 20
    /// Free memory at a heap's top beyond this goes back to the system: twice the mmap threshold,
    /// as glibc keeps it when it moves the threshold itself. At glibc's initial 128 KiB each
    /// request's buffers were given back and faulted in again (85,000 page faults in 8 s of the
    /// request mix, against 819 with these two thresholds).
    public static let trimThreshold: Int32 = 8 << 20

    /// Fixes both thresholds (once, at start-up, before the server allocates much); false where
    /// there is nothing to do (not glibc, or the operator set the mmap threshold).
    @discardableResult
    public static func configure(environment: [String: String]) -> Bool {
        #if canImport(Glibc)
        // `mallopt` is declared in malloc.h, which the Glibc module leaves out.
        guard environment["MALLOC_MMAP_THRESHOLD_"] == nil, let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "mallopt")
        else { return false }
        let mallopt = unsafeBitCast(symbol, to: (@convention(c) (Int32, Int32) -> Int32).self)
        let (M_TRIM_THRESHOLD, M_MMAP_THRESHOLD): (Int32, Int32) = (-1, -3)
        // Fixing one threshold stops glibc from moving the other: both are set.
        return mallopt(M_MMAP_THRESHOLD, mmapThreshold) == 1 && mallopt(M_TRIM_THRESHOLD, trimThreshold) == 1
        #else
        return false
        #endif
    }
}
