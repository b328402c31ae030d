import FletcherApp
import Testing

#if canImport(Glibc)
import Glibc
#endif

@Suite("Memory given back")
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
    #endif
}
