//! Requests that change names rather than contents: mkdir, rename, remove, rmdir. A new name is
//! data too (a directory called after a patient), so mkdir and rename take a residency decision
//! and a `Grant` exactly as an upload does; every change is an audit record.

use super::{Gateway, Operation, Principal, Route, TransferError, VirtualPath};
use crate::audit::AuditEvent;
use crate::storage::StorageError;

impl Gateway {
    /// Puts a namespace change on record (`from` for renames), whatever its outcome, and
    /// hands the outcome on.
    fn recorded(
        &self,
        who: &Principal,
        route: &Route,
        operation: &'static str,
        (object, from): (&str, Option<&str>),
        result: Result<(), StorageError>,
    ) -> Result<(), TransferError> {
        let event = AuditEvent::Namespace {
            operation: operation.to_string(),
            tenant: who.tenant.clone(),
            user: who.user.clone(),
            protocol: Some(who.protocol.as_str().to_string()),
            destination: route.destination.name().to_string(),
            object: object.to_string(),
            from: from.map(str::to_string),
            outcome: match &result {
                Ok(()) => "done".to_string(),
                Err(e) => format!("failed: {e}"),
            },
        };
        if let Err(e) = self.audit.append(&event) {
            tracing::error!(error = %e, operation, "namespace change could not be recorded in the audit log");
        }
        Ok(result?)
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
        self.recorded(who, route, "mkdir", (&key, None), result)
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
        self.recorded(who, route, "rmdir", (&key, None), result)
    }

    pub async fn remove(&self, who: &Principal, path: &VirtualPath) -> Result<(), TransferError> {
        Self::need(who, who.permissions.delete, "delete")?;
        let route = self.route(who)?;
        let key = Self::key_of(route, path);
        let result = route.destination.remove(&key).await;
        self.recorded(who, route, "remove", (&key, None), result)
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
        self.recorded(who, route, "rename", (&to_key, Some(&from_key)), result)
    }
}
