// A thin Swift layer over the generated bindings, only where they are
// awkward from Swift: file URLs instead of paths, a default HTTP transport
// (URLSessionTransport.swift), and closures instead of a listener class.
// Everything else is the generated API as it is, re-exported so that an
// app imports `Katcore` alone (the generated code is a target of its own,
// compiled in Swift 5 mode: docs/mobile.md, "Swift 6").
@_exported import KatcoreBindings
import Foundation

extension CareStore {
    /// Opens (or creates) the store at a file URL with the app's 32-byte key from the Keychain.
    /// Sync sends its requests through `transport` (by default `URLSessionTransport()`).
    ///
    /// - Throws: `KatcoreError.WrongKey` for a key that does not open the file (it is left untouched),
    ///   `KatcoreError.InvalidKey`, `.Corrupt`, `.StoreTooNew` or `.Storage`.
    public static func open(
        at url: URL, key: Data, transport: HttpTransport = URLSessionTransport()
    ) throws -> CareStore {
        try CareStore.open(path: url.path, key: key, transport: transport)
    }

    /// Calls the closures on changes until the returned handle is cancelled or released.
    /// They run on the thread that made the change: hop to the main actor for UI work.
    public func observe(
        onRecordChanged: @escaping @Sendable (CareChange) -> Void,
        onSyncStatusChanged: @escaping @Sendable (SyncStatus) -> Void = { _ in }
    ) -> ListenerHandle {
        addListener(listener: ClosureListener(onRecordChanged: onRecordChanged, onSyncStatusChanged: onSyncStatusChanged))
    }
}

/// What the app shows first (the next session, its checklist, the prompts due, where sync
/// stands), read from the store at a file URL without loading the record's history. Show it
/// at once and open `CareStore` off the main actor. `nil` when the store alone cannot tell
/// (no store at `url`, none is created; or one last written by an earlier app version).
///
/// - Throws: as `CareStore.open(at:key:transport:)`.
public func firstView(at url: URL, key: Data, locale: String, now: Date? = nil) throws -> FirstView? {
    try firstView(path: url.path, key: key, locale: locale, now: now)
}

/// A `CareListener` made of two closures.
final class ClosureListener: CareListener {
    private let recordChanged: @Sendable (CareChange) -> Void
    private let syncStatusChanged: @Sendable (SyncStatus) -> Void

    init(
        onRecordChanged: @escaping @Sendable (CareChange) -> Void,
        onSyncStatusChanged: @escaping @Sendable (SyncStatus) -> Void
    ) {
        recordChanged = onRecordChanged
        syncStatusChanged = onSyncStatusChanged
    }

    func onRecordChanged(change: CareChange) { recordChanged(change) }

    func onSyncStatusChanged(status: SyncStatus) { syncStatusChanged(status) }
}
