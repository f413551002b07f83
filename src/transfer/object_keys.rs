//! The key an upload seals with and the key a download opens with: the tenant's keyring key,
//! or (hold-your-own-key) an object key its own provider wraps at OPEN and unwraps at read.

use zeroize::Zeroizing;

use super::{Gateway, Principal, TransferError};
use crate::audit::AuditEvent;
use crate::crypto::{ExternalKey, ObjectContext, external_key_context};

impl Gateway {
    /// The header context and key of a new object of `tenant`. A hold-your-own-key tenant's
    /// provider is asked now (one call): unreachable, slow or revoked, the upload is refused
    /// here, before the client sends a byte; other tenants are not affected.
    pub(super) async fn upload_key(
        &self,
        tenant: &str,
        object_id: [u8; 16],
    ) -> Result<(ObjectContext, Zeroizing<[u8; 32]>), TransferError> {
        let context = external_key_context(tenant, &object_id);
        match self.external.new_object_key(tenant, &context).await {
            Ok(Some(k)) => Ok((
                ObjectContext {
                    tenant: tenant.to_string(),
                    key_id: k.provider.clone(),
                    key_version: k.wrapped.key_version,
                    object_id,
                    external: Some(ExternalKey {
                        provider: k.kind.id(),
                        blob: k.wrapped.blob.clone(),
                    }),
                },
                k.key,
            )),
            Ok(None) => {
                // Copied out: this upload seals with this key to its end, whatever a reload does.
                let active = self.keys.current().keyring().active(tenant).map_err(|e| {
                    tracing::error!(tenant = %tenant, error = %e, "no active key");
                    TransferError::Failure(
                        "the tenant's key is unavailable; contact the operator".into(),
                    )
                })?;
                Ok((
                    ObjectContext {
                        tenant: tenant.to_string(),
                        key_id: active.key_id.clone(),
                        key_version: active.version,
                        object_id,
                        external: None,
                    },
                    active.kek.clone(),
                ))
            }
            Err(e) => {
                tracing::warn!(tenant = %tenant, error = %e, "upload refused: the tenant's key provider did not wrap a key");
                Err(TransferError::Failure(format!("upload refused: {e}")))
            }
        }
    }

    /// The key that opens an object whose header names `ctx`.
    pub(super) async fn download_key(
        &self,
        ctx: &ObjectContext,
    ) -> Result<Zeroizing<[u8; 32]>, TransferError> {
        match &ctx.external {
            None => self
                .keys
                .current()
                .keyring()
                .kek(&ctx.tenant, &ctx.key_id, ctx.key_version)
                .map_err(|e| TransferError::Failure(format!("cannot open the object: {e}"))),
            Some(ext) => {
                let context = external_key_context(&ctx.tenant, &ctx.object_id);
                self.external
                    .object_key(&ctx.tenant, &ctx.key_id, ext.provider, &ext.blob, &context)
                    .await
                    .map_err(|e| {
                        tracing::warn!(tenant = %ctx.tenant, error = %e, "download refused: the object key did not unwrap");
                        TransferError::Failure(format!("cannot open the object: {e}"))
                    })
            }
        }
    }

    /// An upload refused at OPEN for want of a key leaves an `aborted` record: the decision
    /// allowed it, so without one the audit would show an upload that never ended.
    pub(super) fn audit_refused_open(
        &self,
        who: &Principal,
        destination: &str,
        object: &str,
        error: &TransferError,
    ) {
        let record = AuditEvent::Aborted {
            tenant: who.tenant.clone(),
            user: who.user.clone(),
            destination: destination.to_string(),
            object: object.to_string(),
            cause: error.to_string(),
            protocol: Some(who.protocol.as_str().to_string()),
        };
        if let Err(e) = self.audit.append(&record) {
            tracing::error!(error = %e, "audit log unavailable");
        }
    }
}
