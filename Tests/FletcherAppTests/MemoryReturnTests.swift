import FletcherApp
import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

// Serialized: each test depends on what the allocator holds free.
@Suite("Memory given back", .serialized)
struct MemoryReturnTests {
    #if canImport(Glibc)
    /// Whether glibc serves the block at `pointer` with a mapping of its own (its chunk header's
    /// IS_MMAPPED bit), which it unmaps on free.
    private func isMapped(_ pointer: UnsafeMutableRawPointer) -> Bool {
        pointer.load(fromByteOffset: -MemoryLayout<Int>.size, as: Int.self) & 0x2 != 0
    }

    /// Once fixed, a freed big block no longer raises the threshold: a smaller block above it is
    /// still mapped (and so returned on free). glibc's default would serve it from the heap.
    @Test func bigBlocksStayMappedAfterABiggerOneIsFreed() throws {
        #expect(MemoryReturn.configure(environment: [:]))
        let bigger = try #require(malloc(24 << 20))
        #expect(isMapped(bigger))
        free(bigger)
        let block = try #require(malloc(6 << 20))
        defer { free(block) }
        #expect(isMapped(block))
        let small = try #require(malloc(2 << 20))
        defer { free(small) }
        #expect(!isMapped(small))
    }

    @Test func anOperatorsThresholdWins() {
        #expect(!MemoryReturn.configure(environment: ["MALLOC_MMAP_THRESHOLD_": "1048576"]))
    }

    /// Small blocks freed in the middle of the heap stay resident until trimmed: the allocator
    /// counts them as held free, and a trim gives their pages back (the process's resident set
    /// falls by most of them).
    @Test func freedSmallBlocksAreGivenBackByATrim() throws {
        // 64 MB in 1 KiB blocks, every page touched, with a block kept after each 64 so that no
        // heap top frees them on its own. The kept blocks (1 MB) stay for the process's life:
        // freed, they would merge the rest into one 64-MB free block, which big allocations
        // elsewhere would then be served from instead of mappings of their own.
        var blocks: [UnsafeMutableRawPointer] = []
        for index in 0..<65_536 {
            let block = try #require(malloc(1024))
            memset(block, 1, 1024)
            if index % 64 != 63 { blocks.append(block) }  // the others are kept (above)
        }
        let before = try #require(MemoryReturn.heldFree)
        blocks.forEach { free($0) }
        let held = try #require(MemoryReturn.heldFree)
        #expect(held - before > 48 << 20)
        let resident = try #require(MemoryReturn.resident)
        MemoryReturn.trim()
        // 63 MB freed; other tests running meanwhile allocate some again.
        #expect(try resident - #require(MemoryReturn.resident) > 24 << 20)
    }
    #endif

    /// The free bytes (costly to ask) are asked when the resident set has moved by 4 MB since they
    /// last were, or after 15 looks however still it stays.
    @Test func theFreeBytesAreAskedWhenTheResidentSetMovesOrAfterAWhile() {
        var trimmer = MemoryTrimmer()
        let mb = 1 << 20
        let moving = [100, 101, 103, 104, 99, 99].map { trimmer.shouldAsk(resident: $0 * mb) }
        // First look asks; 104 is 4 MB above the 100 last asked at; 99 is 5 MB below 104.
        #expect(moving == [true, false, false, true, true, false])
        let still = (0..<30).map { _ in trimmer.shouldAsk(resident: 99 * mb) }
        #expect(still.enumerated().filter(\.element).map(\.offset) == [13, 28], "every 15th look")
        let unknown = trimmer.shouldAsk(resident: nil)
        #expect(unknown, "unknown: always")
        #expect(MemoryTrimmer.residentStep == 4 * mb && MemoryTrimmer.backstop == 15)
    }

    @Test func theResidentSetIsReadWhereThereIsOne() throws {
        #if os(Linux)
        let resident = try #require(MemoryReturn.resident)
        #expect(resident > 1 << 20 && resident < 1 << 40)
        #endif
    }

    /// A trim is due once `threshold` bytes more are held free than at the lowest point since the
    /// last one: memory used and freed again, not memory that stayed free.
    @Test func aTrimIsDueWhenMuchHasBeenFreedSinceTheLowestPoint() {
        var trimmer = MemoryTrimmer()
        let mb = 1 << 20
        let due = [40, 50, 10, 10 + 16, 10 + 16, 20, 20 + 16].map { trimmer.shouldTrim(free: $0 * mb) }
        // The first look only sets the mark; 16 MB more than the lowest point (10) is due; then the
        // same free memory is not, until it is reused (down to 20) and 16 MB more are freed.
        #expect(MemoryTrimmer.threshold == 16 * mb)
        #expect(due == [false, false, false, true, false, false, true])
    }
}
