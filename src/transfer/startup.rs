//! Starting the gateway: the upload journal opened, destinations opened (tenant prefixes
//! created, unfinished uploads of an earlier run aborted), every tenant's keys checked.

use super::*;

/// The upload journal, if any destination makes multipart uploads, and what an earlier run left
/// open in it.
fn open_journal(
    config: &Config,
) -> Result<(Option<Arc<UploadJournal>>, Vec<Pending>), JournalError> {
    let any_s3 = config
        .destinations
        .values()
        .any(|d| matches!(d.kind, DestinationKind::S3(_)));
    if !any_s3 {
        return Ok((None, Vec::new()));
    }
    let (journal, pending) = UploadJournal::open(&config.storage.upload_journal)?;
    Ok((Some(journal), pending))
}

/// Idle ~256 KiB part buffers kept for reuse (32 MiB): one upload circulates about 99 (a part
/// being filled and two in flight, 32 each, and three being sealed), so a busy gateway keeps
/// what the next upload needs.
const IDLE_PART_BUFFERS: usize = 128;

/// What clients merely hold (writes held ahead of a gap, open directory listings) may use half
/// of the memory budget, and always leaves an S3 upload's first part: uploads that move are
/// never starved by data parked in the gateway.
fn client_held_share(budget: &MemoryBudget) -> MemoryBudget {
    budget.share(crate::storage::s3::held_share_bytes(budget.total_bytes()))
}

impl Gateway {
    /// Opens destinations (creating tenant prefixes) and checks every tenant has keys. From
    /// here on the gateway audits and counts every keyring and policy reload.
    pub async fn new(
        config: &Config,
        keys: Arc<KeyringStore>,
        policy: Arc<PolicyStore>,
        audit: Arc<AuditLog>,
    ) -> Result<Gateway, GatewayError> {
        let (journal, mut pending) = open_journal(config)?;
        let mut destinations: HashMap<String, Arc<dyn Destination>> = HashMap::new();
        let mut buckets: Vec<Arc<S3Destination>> = Vec::new();
        // One budget for every upload's part buffers: a full budget is backpressure, not OOM.
        let budget =
            MemoryBudget::new(usize::try_from(config.storage.memory_budget).unwrap_or(usize::MAX));
        let hooks = Hooks {
            catalogued: {
                let policy = policy.clone();
                Arc::new(move |region: &str| {
                    policy
                        .current()
                        .destinations()
                        .any(|d| d.eq_ignore_ascii_case(region))
                })
            },
            on_change: {
                let audit = audit.clone();
                Arc::new(move |change: &StateChange| {
                    if let Err(e) = audit.append(&AuditEvent::Destination {
                        destination: change.destination.clone(),
                        state: change.state.as_str().to_string(),
                        observed_region: change.observed_region.clone(),
                        detail: change.detail.clone(),
                    }) {
                        tracing::error!(error = %e, "audit log unavailable");
                    }
                })
            },
        };
        for (name, d) in &config.destinations {
            let dest: Arc<dyn Destination> = match &d.kind {
                DestinationKind::S3(cfg) => {
                    let s3 = S3Destination::open(
                        name,
                        cfg,
                        &config.storage,
                        budget.clone(),
                        hooks.clone(),
                        journal.clone(),
                    )
                    .await
                    .map_err(|e| GatewayError::Destination {
                        name: name.clone(),
                        source: e.into(),
                    })?;
                    let s3 = Arc::new(s3);
                    buckets.push(s3.clone());
                    s3
                }
                DestinationKind::Fs {
                    root,
                    country,
                    operator_country,
                } => Arc::new(
                    FsDestination::open(name, root, country)
                        .map_err(|source| GatewayError::Destination {
                            name: name.clone(),
                            source,
                        })?
                        .with_operator_country(operator_country.clone()),
                ),
            };
            destinations.insert(name.clone(), dest);
        }
        let external = Arc::new(crate::keys::ExternalKeys::from_config(config).await?);
        let mut routes = HashMap::new();
        for (tname, t) in &config.tenants {
            let Some(dest) = destinations.get(&t.destination) else {
                continue; // config validation guarantees this exists
            };
            // A hold-your-own-key tenant's keys are at its provider, not in the keyring.
            if t.key_provider.is_none() && keys.current().keyring().active(tname).is_err() {
                return Err(GatewayError::NoKeys {
                    tenant: tname.clone(),
                });
            }
            if let Err(source) = dest.ensure_root(t.prefix.trim_end_matches('/')).await {
                return Err(GatewayError::Destination {
                    name: t.destination.clone(),
                    source,
                });
            }
            routes.insert(
                tname.clone(),
                Route {
                    destination: dest.clone(),
                    prefix: t.prefix.clone(),
                    classification: t.classification,
                },
            );
        }
        // Multipart uploads an earlier run of this instance left (crash, lost store) are
        // aborted now; other instances' uploads under the same prefixes are not ours to touch.
        for b in &buckets {
            let (mine, rest) = pending.into_iter().partition(|p| p.destination == b.name());
            pending = rest;
            b.sweep_unfinished(mine).await;
        }
        for p in &pending {
            tracing::warn!(destination = %p.destination, "the upload journal names a destination that is no longer configured; its entry is kept");
        }
        let auth_throttle = auth_record::throttle(config, &audit);
        let held_budget = client_held_share(&budget);
        let inflow_budget =
            budget.share(crate::storage::s3::inflow_share_bytes(budget.total_bytes()));
        let metrics = Arc::new(crate::admin::Metrics::new());
        let policy_reloads = reloads::observe(&keys, &policy, &audit, &metrics);
        Ok(Gateway {
            routes,
            users: Users::from_config(config),
            guard: AuthGuard::new(config.auth.clone()),
            sessions: SessionLimits::new(config.server.max_sessions_per_user),
            keys,
            external,
            policy,
            policy_reloads,
            audit,
            auth_throttle,
            reorder: reorder::ReorderLimits {
                window: config.server.reorder_window,
                max_held: config.limits.max_held_writes as usize,
                budget: held_budget.clone(),
            },
            held_budget,
            inflow_budget,
            listing_sizes: if config.storage.legacy_objects {
                ListingSizes::FromHeaders
            } else {
                ListingSizes::FromStoredLengths
            },
            handles: HandleLimits::new(&config.limits),
            uploads: Arc::new(in_flight::InFlight::default()),
            buffers: buffers::BufferPool::new(IDLE_PART_BUFFERS),
            destinations: destinations.into_values().collect(),
            budget,
            metrics,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_clients_hold_leaves_uploads_their_first_part() {
        for total in [16usize << 20, 32 << 20, 256 << 20, 64 << 30] {
            let budget = MemoryBudget::new(total);
            let held = client_held_share(&budget);
            assert!(held.total_bytes() <= total / 2, "{total}");
            let all_held = held.try_reserve(held.total_bytes()).unwrap();
            assert!(
                budget
                    .try_reserve(crate::storage::s3::MIN_PART_BUDGET)
                    .is_some(),
                "a first part still fits beside a full held share ({total})"
            );
            drop(all_held);
        }
        assert_eq!(
            client_held_share(&MemoryBudget::new(256 << 20)).total_bytes(),
            128 << 20
        );
    }

    #[test]
    fn every_share_spent_still_leaves_uploads_their_first_part() {
        use crate::storage::s3::{inflow_share_bytes, read_ahead_share_bytes};
        for total in [16usize << 20, 32 << 20, 256 << 20, 64 << 30] {
            let budget = MemoryBudget::new(total);
            let shares = [
                client_held_share(&budget),
                budget.share(read_ahead_share_bytes(total)),
                budget.share(inflow_share_bytes(total)),
            ];
            // A share is at least one unit, so the smallest budgets are checked by sum.
            let spent: Vec<_> = shares
                .iter()
                .map(|s| s.try_reserve(s.total_bytes()).unwrap())
                .collect();
            assert!(
                budget
                    .try_reserve(crate::storage::s3::MIN_PART_BUDGET)
                    .is_some(),
                "a first part still fits beside every spent share ({total})"
            );
            drop(spent);
        }
        assert_eq!(
            inflow_share_bytes(256 << 20),
            (64 << 20) - crate::storage::s3::MIN_PART_BUDGET
        );
    }
}
