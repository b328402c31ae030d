import FletcherDomain
public import FletcherJSON

extension StoredEvent {
    /// The event as the API gives it (`GET /api/events`, the `data` of each message of
    /// `GET /api/events/stream`): `{"id","type","time","sequence","dataset_id","data_product_id",
    /// "cursor","data"}`, every field present (`null` where absent). `data` is stored as canonical
    /// JSON and copied as it is.
    public func writeJSON(to out: inout JSONBytes) {
        out.raw(#"{"id":"#)
        out.uuid(id)
        out.raw(#","type":"#)
        out.string(type.rawValue)
        out.raw(#","time":"#)
        out.date(time)
        out.raw(#","sequence":"#)
        if let sequence { out.json(JSONNode.integer(Int(sequence))) } else { out.raw("null") }
        out.raw(#","dataset_id":"#)
        if let datasetId { out.uuid(datasetId) } else { out.raw("null") }
        out.raw(#","data_product_id":"#)
        if let dataProductId { out.uuid(dataProductId) } else { out.raw("null") }
        out.raw(#","cursor":"#)
        out.string(cursor.text)
        out.raw(#","data":"#)
        out.json(data)
        out.raw("}")
    }

    /// The event's JSON (`writeJSON`) alone.
    public var json: [UInt8] {
        var out = JSONBytes(capacity: 384 + data.text.utf8.count)
        writeJSON(to: &out)
        return out.bytes
    }
}

extension EventPage {
    /// The page as the API gives it: `{"events":[…],"next":"<cursor>"}`, oldest first.
    public var json: [UInt8] {
        var out = JSONBytes(capacity: 64 + events.reduce(0) { $0 + 384 + $1.data.text.utf8.count })
        out.raw(#"{"events":["#)
        for (offset, event) in events.enumerated() {
            if offset > 0 { out.raw(",") }
            event.writeJSON(to: &out)
        }
        out.raw(#"],"next":"#)
        out.string(next.text)
        out.raw("}")
        return out.bytes
    }
}
