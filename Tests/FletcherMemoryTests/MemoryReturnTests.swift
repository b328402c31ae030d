import FletcherMemory
import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

// Serialized: each test depends on what the allocator holds free (and those that read the process's
// resident set run in a process of their own, without other tests beside them).
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

    /// Allocates 64 MB in 1 KiB blocks, every page touched, and frees them but one in 64, so that no
    /// heap top frees them on its own. The kept blocks (1 MB a call) stay for the process's life:
    /// freed, they would merge the rest into one 64-MB free block, which big allocations elsewhere
    /// would then be served from instead of mappings of their own.
    private func touchAndFreeSmallBlocks() throws {
        var blocks: [UnsafeMutableRawPointer] = []
        for index in 0..<65_536 {
            let block = try #require(malloc(1024))
            memset(block, 1, 1024)
            if index % 64 != 63 { blocks.append(block) }  // the others are kept (above)
        }
        blocks.forEach { free($0) }
    }

    /// Whether this process runs the memory tests alone: see `theResidentSetTestsPassInAProcessOfTheirOwn`.
    static let alone = ProcessInfo.processInfo.environment["FLETCHER_MEMORY_TESTS_ALONE"] == "1"

    /// The resident set is the whole process's: with other tests allocating, freeing and trimming
    /// beside them (the server's memory-return service among them), the two tests below would
    /// measure those too. So they run in a process of their own — this test binary, run again with
    /// this suite only — and this test checks that they passed there.
    @Test(.enabled(if: !Self.alone))
    func theResidentSetTestsPassInAProcessOfTheirOwn() throws {
        let child = Process()
        child.executableURL = URL(fileURLWithPath: try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe"))
        child.arguments = ["--testing-library", "swift-testing", "--filter", "MemoryReturnTests"]
        var environment = ProcessInfo.processInfo.environment
        environment["FLETCHER_MEMORY_TESTS_ALONE"] = "1"
        child.environment = environment
        let output = Pipe()
        child.standardOutput = output
        child.standardError = output
        try child.run()
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        child.waitUntilExit()
        #expect(child.terminationStatus == 0, "\(text)")
        for name in ["freedSmallBlocksAreGivenBackByATrim()", "freeMemoryUsedAgainAfterATrimIsSeenAgain()"] {
            #expect(text.contains("Test \(name) passed"), "\(text)")
        }
    }

    /// Small blocks freed in the middle of the heap stay resident until trimmed: resident and not in
    /// use, and a trim gives their pages back (the process's resident set falls by most of them).
    @Test(.enabled(if: Self.alone))
    func freedSmallBlocksAreGivenBackByATrim() throws {
        let before = try #require(MemoryReturn.residentNotInUse)
        try touchAndFreeSmallBlocks()
        // 63 MB freed.
        #expect(try #require(MemoryReturn.residentNotInUse) - before > 24 << 20)
        let resident = try #require(MemoryReturn.resident)
        MemoryReturn.trim()
        #expect(try resident.total - #require(MemoryReturn.resident).total > 24 << 20)
        #expect(try resident.anonymous - #require(MemoryReturn.resident).anonymous > 24 << 20)
    }

    /// Free memory given back by a trim, then used and freed again, is resident again — and seen
    /// so, though the allocator holds as many bytes free as right after the trim (what the first
    /// way of watching counted, and so never trimmed again).
    @Test(.enabled(if: Self.alone))
    func freeMemoryUsedAgainAfterATrimIsSeenAgain() throws {
        try touchAndFreeSmallBlocks()
        MemoryReturn.trim()
        let trimmed = try #require(MemoryReturn.residentNotInUse)
        try touchAndFreeSmallBlocks()
        let again = try #require(MemoryReturn.residentNotInUse)
        #expect(again - trimmed > 24 << 20)
        MemoryReturn.trim()
        #expect(try again - #require(MemoryReturn.residentNotInUse) > 24 << 20, "and a trim gives it back again")
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
        #expect(resident.total > 1 << 20 && resident.total < 1 << 40)
        #expect(resident.anonymous > 0 && resident.anonymous < resident.total, "the executable's pages are files'")
        #endif
    }

    /// The service's look: the allocator asked only when the resident set moved, a trim when due,
    /// and what the trim left taken as the mark (so the same free memory is not trimmed twice).
    @Test func aLookTrimsWhenDueAndMarksWhatTheTrimLeft() {
        var trimmer = MemoryTrimmer()
        let mb = 1 << 20
        var notInUse = 20 * mb
        var left = 5 * mb  // what a trim leaves
        var asked = 0
        var trims = 0
        func look(resident: Int) -> Bool {
            trimmer.look(resident: resident * mb, notInUse: { asked += 1; return notInUse }, trim: { trims += 1; notInUse = left })
        }
        // Start-up left 20 MB free: trimmed at the first look, 5 MB left is the mark.
        #expect(look(resident: 100) && trims == 1 && asked == 2)
        // The resident set still: the allocator is not asked.
        #expect(!look(resident: 102) && asked == 2)
        // It moved: asked; 18 MB is under the mark (5) + 16.
        notInUse = 18 * mb
        #expect(!look(resident: 140) && asked == 3 && trims == 1)
        // 21 MB is due; this trim leaves 12 MB (blocks too small to give back).
        notInUse = 21 * mb
        left = 12 * mb
        #expect(look(resident: 120) && trims == 2)
        // 25 MB: 16 above the first mark (5), but not above what the last trim left (12).
        notInUse = 25 * mb
        #expect(!look(resident: 100) && trims == 2, "what the trim left is the mark")
        notInUse = 28 * mb
        #expect(look(resident: 140) && trims == 3)
    }

    /// A trim is due once `threshold` bytes more are resident and not in use than the mark: what
    /// the last trim left, or the lowest point since.
    @Test func aTrimIsDueWhenMuchMoreIsResidentAndNotInUseThanTheMark() {
        var trimmer = MemoryTrimmer()
        let mb = 1 << 20
        #expect(MemoryTrimmer.threshold == 16 * mb)
        // The first look sets the mark (what start-up freed is due if it is 16 MB); 16 MB above
        // the mark is due.
        var startUp = MemoryTrimmer()
        let startUpDue = startUp.shouldTrim(notInUse: 16 * mb)
        #expect(startUpDue)
        #expect([10, 25, 26].map { trimmer.shouldTrim(notInUse: $0 * mb) } == [false, false, true])
        // The trim left 12; the same memory touched and freed again (the count of free bytes
        // unchanged) is due again.
        trimmer.trimmed(notInUse: 12 * mb)
        #expect([20, 28].map { trimmer.shouldTrim(notInUse: $0 * mb) } == [false, true])
        // A trim that gives little back moves the mark up: not due again at once.
        trimmer.trimmed(notInUse: 27 * mb)
        #expect([30, 42, 43].map { trimmer.shouldTrim(notInUse: $0 * mb) } == [false, false, true])
        // Below the mark is the new mark.
        trimmer.trimmed(notInUse: 27 * mb)
        #expect([5, 20, 21].map { trimmer.shouldTrim(notInUse: $0 * mb) } == [false, false, true])
    }
}
