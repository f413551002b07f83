//! Requests that change names rather than contents: mkdir, rename, remove, rmdir. A new name is
//! data too (a directory called after a patient), so mkdir and rename take a residency decision
//! and a `Grant` exactly as an upload does; every change is an audit record.

use super::{Gateway, Operation, Principal, TransferError, VirtualPath};
use crate::audit::AuditEvent;
use crate::storage::StorageError;

/// One namespace change, for its audit record.
struct Change<'a> {
    operation: &'static str,
    who: &'a Principal,
    destination: &'a str,
    object: &'a str,
    from: Option<&'a str>,
}

impl Gateway {
    fn record_change(&self, c: Change<'_>, result: &Result<(), StorageError>) {
        let event = AuditEvent::Namespace {
            operation: c.operation.to_string(),
            tenant: c.who.tenant.clone(),
            user: c.who.user.clone(),
            destination: c.destination.to_string(),
            object: c.object.to_string(),
            from: c.from.map(str::to_string),
            outcome: match result {
                Ok(()) => "done".to_string(),
                Err(e) => format!("failed: {e}"),
            },
        };
        if let Err(e) = self.audit.append(&event) {
            tracing::error!(error = %e, operation = c.operation, "namespace change could not be recorded in the audit log");
        }
    }

    pub async fn mkdir(&self, who: &Principal, path: &VirtualPath) -> Result<(), TransferError> {
        Self::need(who, who.permissions.write, "create directories")?;
        if path.is_root() {
            return Err(TransferError::Failure("the root already exists".into()));
        }
        let route = self.route(who)?;
        let key = Self::key_of(route, path);
        let grant = self.decide(who, route, &key, Operation::Mkdir)?;
        let result = route.destination.mkdir(&grant, &key).await;
        self.record_change(
            Change {
                operation: "mkdir",
                who,
                destination: route.destination.name(),
                object: &key,
                from: None,
            },
            &result,
        );
        Ok(result?)
    }

    pub async fn rmdir(&self, who: &Principal, path: &VirtualPath) -> Result<(), TransferError> {
        Self::need(who, who.permissions.delete, "delete")?;
        if path.is_root() {
            return Err(TransferError::PermissionDenied(
                "the root cannot be removed".into(),
            ));
        }
        let route = self.route(who)?;
        let key = Self::key_of(route, path);
        let result = route.destination.rmdir(&key).await;
        self.record_change(
            Change {
                operation: "rmdir",
                who,
                destination: route.destination.name(),
                object: &key,
                from: None,
            },
            &result,
        );
        Ok(result?)
    }

    pub async fn remove(&self, who: &Principal, path: &VirtualPath) -> Result<(), TransferError> {
        Self::need(who, who.permissions.delete, "delete")?;
        let route = self.route(who)?;
        let key = Self::key_of(route, path);
        let result = route.destination.remove(&key).await;
        self.record_change(
            Change {
                operation: "remove",
                who,
                destination: route.destination.name(),
                object: &key,
                from: None,
            },
            &result,
        );
        Ok(result?)
    }

    /// Renames within the tenant; the sealed bytes (and their object id) stay as they are, and
    /// an existing target is never replaced.
    pub async fn rename(
        &self,
        who: &Principal,
        from: &VirtualPath,
        to: &VirtualPath,
    ) -> Result<(), TransferError> {
        Self::need(who, who.permissions.write, "rename")?;
        if from.is_root() || to.is_root() {
            return Err(TransferError::PermissionDenied(
                "the root cannot be renamed".into(),
            ));
        }
        let route = self.route(who)?;
        let (from_key, to_key) = (Self::key_of(route, from), Self::key_of(route, to));
        let grant = self.decide(who, route, &to_key, Operation::Rename)?;
        let result = route.destination.rename(&grant, &from_key, &to_key).await;
        self.record_change(
            Change {
                operation: "rename",
                who,
                destination: route.destination.name(),
                object: &to_key,
                from: Some(&from_key),
            },
            &result,
        );
        Ok(result?)
    }
}
