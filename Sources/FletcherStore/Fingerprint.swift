/// FNV-1a, 64 bits, over `bytes`, in hexadecimal: the same on every machine and run (unlike
/// `Hasher`) and changing whenever the bytes do, which is all a cache key or a name derived from
/// content needs (the pages' asset URLs, the statement functions' names).
public func fingerprint(_ bytes: some Sequence<UInt8>) -> String {
    String(bytes.reduce(0xcbf2_9ce4_8422_2325 as UInt64) { ($0 ^ UInt64($1)) &* 0x100_0000_01b3 }, radix: 16)
}
