import FletcherDomain
import FletcherJSON
import FletcherStore
import Foundation
import NIOCore

/// A plan's dependencies stored `size` to a row (`dependency_block`), in a binary encoding of their
/// own: a dependency is only ever read with all of its plan's, and rewritten by the submission that
/// names it again, so no query needs it as a row of its own. As rows, each dependency costs
/// PostgreSQL a heap tuple, an index entry and WAL for both; a 100,000-product plan's 300,000
/// dependencies are 74 blocks (docs/ARCHITECTURE.md, "Storage", gives the measured difference).
///
/// A block holds the dependencies at positions `first ..< first + size` (the last block of a plan
/// fewer), in order, each as:
///
///     parent id    16 bytes
///     child id     16 bytes
///     extra        int32 byte count (-1: none), then its JSON in UTF-8
///     modified by  int32 byte count, then UTF-8
///     modified     int64 microseconds since 1970-01-01 UTC
///
/// Integers are big-endian, as PostgreSQL's `int4send`/`int8send` write them (migration 11 builds
/// blocks from rows in SQL with them).
enum DependencyBlocks {
    /// Dependencies to a block: a block is rewritten whole when one of its dependencies changes (a
    /// 100,000-product plan's blocks are about 220 KB). Part of the stored format: blocks start at
    /// multiples of it (migration 11 wrote them so), and another size would need a migration
    /// rewriting every block.
    static let size = 4096

    /// The first positions of the blocks holding `positions`, in order, each once.
    static func firstPositions(holding positions: [Int]) -> [Int] {
        var firsts: [Int] = []
        for position in positions.sorted() {
            let first = position - position % size
            if firsts.last != first { firsts.append(first) }
        }
        return firsts
    }

    /// The block of `dependencies` starting at `first`.
    static func encode(_ dependencies: [Dependency], from first: Int) -> ByteBuffer {
        let end = min(first + size, dependencies.count)
        var buffer = ByteBufferAllocator().buffer(capacity: (end - first) * 48)
        for dependency in dependencies[first..<end] {
            writeUUID(dependency.parentId, to: &buffer)
            writeUUID(dependency.childId, to: &buffer)
            if let extra = StoredColumn.json(dependency.extra) {
                writeText(extra, to: &buffer)
            } else {
                buffer.writeInteger(Int32(-1))
            }
            writeText(dependency.modifiedBy, to: &buffer)
            buffer.writeInteger(dependency.modifiedDate.microsecondsSince1970)
        }
        return buffer
    }

    /// Appends the dependencies of `block` to `dependencies`; a block that does not read to its end
    /// exactly is `StoreError.corrupt`.
    static func decode(_ block: ByteBuffer, into dependencies: inout [Dependency]) throws {
        var block = block
        while block.readableBytes > 0 {
            guard let parent = readUUID(&block), let child = readUUID(&block),
                let extraCount = block.readInteger(as: Int32.self)
            else { throw corrupt }
            var extra: JSONValue?
            if extraCount >= 0 {
                guard let text = block.readString(length: Int(extraCount)) else { throw corrupt }
                extra = text == "{}" ? .object([:]) : try StoredColumn.json(text, column: "dependency_block.rows")
            } else if extraCount != -1 {
                throw corrupt
            }
            guard let byCount = block.readInteger(as: Int32.self), byCount >= 0,
                let modifiedBy = block.readString(length: Int(byCount)),
                let modified = block.readInteger(as: Int64.self)
            else { throw corrupt }
            dependencies.append(
                Dependency(
                    parentId: parent, childId: child, extra: extra, modifiedBy: modifiedBy,
                    modifiedDate: Date(microsecondsSince1970: modified)))
        }
    }

    /// Appends the 16 bytes of `id`, as `readUUID` reads them.
    static func writeUUID(_ id: UUID, to buffer: inout ByteBuffer) {
        buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: 16) { bytes in
            bytes.storeBytes(of: id.uuid, as: uuid_t.self)
            return 16
        }
    }

    static func readUUID(_ buffer: inout ByteBuffer) -> UUID? {
        guard buffer.readableBytes >= 16 else { return nil }
        let uuid = buffer.withUnsafeReadableBytes { $0.loadUnaligned(as: uuid_t.self) }
        buffer.moveReaderIndex(forwardBy: 16)
        return UUID(uuid: uuid)
    }

    private static var corrupt: StoreError { .corrupt("a dependency_block row is cut short or malformed") }

    private static func writeText(_ text: String, to buffer: inout ByteBuffer) {
        let countAt = buffer.writerIndex
        buffer.writeInteger(Int32(0))
        let count = buffer.writeString(text)
        buffer.setInteger(Int32(count), at: countAt)
    }
}
