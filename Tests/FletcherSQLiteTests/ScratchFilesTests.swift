import FletcherTestSupport
import Foundation
import Testing

/// Test files go in a folder of the test process's own; what earlier runs left is swept.
@Suite("Scratch files")
struct ScratchFilesTests {
    @Test func pathsAreInTheProcessesOwnFolder() {
        let path = ScratchFiles.path("store", suffix: "sqlite")
        #expect(path.hasPrefix(ScratchFiles.folder.path + "/store-") && path.hasSuffix(".sqlite"))
        #expect(ScratchFiles.folder.lastPathComponent == "fletcher-tests-\(ProcessInfo.processInfo.processIdentifier)")
    }

    @Test func onlyNamesEarlierTestsUsedAreLegacy() {
        let id = UUID().uuidString
        for name in ["fletcher-test-\(id).sqlite", "fletcher-test-\(id).sqlite-wal", "fletcher-two-\(id).sqlite-shm",
                     "fletcher-\(id).sqlite", "env-\(id)"] {
            #expect(ScratchFiles.isLegacy(name), "\(name)")
        }
        for name in ["fletcher-prod.sqlite", "fletcher-\(id).sqlite.bak", "env-local", "fletcher-test-\(id)", "my-\(id).sqlite"] {
            #expect(!ScratchFiles.isLegacy(name), "\(name)")
        }
    }

    @Test func foldersOfGoneProcessesAndOldLegacyFilesAreSwept() throws {
        let manager = FileManager.default
        let base = ScratchFiles.folder.appendingPathComponent("sweep-\(UUID().uuidString)")
        try manager.createDirectory(at: base, withIntermediateDirectories: true)
        // A process that has exited: its pid names no process (until reused, which this run won't see).
        let finished = Process()
        finished.executableURL = URL(fileURLWithPath: "/bin/true")
        try finished.run()
        finished.waitUntilExit()
        let gone = base.appendingPathComponent("fletcher-tests-\(finished.processIdentifier)")
        let alive = base.appendingPathComponent("fletcher-tests-\(ProcessInfo.processInfo.processIdentifier)")
        let oldLegacy = base.appendingPathComponent("fletcher-test-\(UUID().uuidString).sqlite")
        let newLegacy = base.appendingPathComponent("fletcher-test-\(UUID().uuidString).sqlite")
        let oldOther = base.appendingPathComponent("fletcher-prod.sqlite")
        for folder in [gone, alive] { try manager.createDirectory(at: folder, withIntermediateDirectories: true) }
        for file in [oldLegacy, newLegacy, oldOther] { try Data("x".utf8).write(to: file) }
        let twoHoursAgo = Date().addingTimeInterval(-7200)
        for file in [oldLegacy, oldOther] {
            try manager.setAttributes([.modificationDate: twoHoursAgo], ofItemAtPath: file.path)
        }

        ScratchFiles.sweep(base)

        let left = Set(try manager.contentsOfDirectory(atPath: base.path))
        #expect(left == [alive.lastPathComponent, newLegacy.lastPathComponent, oldOther.lastPathComponent])
    }
}
