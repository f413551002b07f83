//! `eugate encrypt` / `eugate decrypt`: the object format on local files.
//!
//! Both write to a temporary file beside OUTPUT and rename it only when everything verified, so
//! a failure never leaves a partial or unauthenticated output behind.

use std::fs::File;
use std::io::{IsTerminal, Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use ring::rand::{SecureRandom, SystemRandom};
use zeroize::Zeroizing;

use super::keys::{KeyFiles, KeySource};
use crate::crypto::{
    CryptoError, ExternalKey, Header, ObjectContext, Opener, Sealer, external_key_context,
};
use crate::keys::provider::{self, ProviderKind};

const CHUNK: usize = 1 << 20;

#[derive(Debug, Args)]
pub struct EncryptArgs {
    #[command(flatten)]
    files: KeyFiles,
    /// Tenant whose active key seals the object.
    #[arg(long)]
    tenant: String,
    /// Plaintext file to read.
    input: PathBuf,
    /// Where to write the sealed object (replaced only on success).
    output: PathBuf,
}

#[derive(Debug, Args)]
pub struct DecryptArgs {
    #[command(flatten)]
    files: KeyFiles,
    /// Refuse objects that belong to any other tenant.
    #[arg(long)]
    tenant: Option<String>,
    /// Sealed object to read; tenant and key id come from its header.
    input: PathBuf,
    /// Where to write the plaintext (created only after the final segment verifies).
    output: PathBuf,
}

pub fn encrypt(args: EncryptArgs) -> anyhow::Result<()> {
    let ring = args.files.open()?;
    let key = ring
        .active(&args.tenant)
        .with_context(|| format!("no key to seal for tenant {:?}", args.tenant))?;
    let mut object_id = [0u8; 16];
    SystemRandom::new()
        .fill(&mut object_id)
        .map_err(|_| anyhow::anyhow!("the system random number generator failed"))?;
    let ctx = ObjectContext {
        tenant: args.tenant.clone(),
        key_id: key.key_id.clone(),
        key_version: key.version,
        object_id,
        external: None,
    };
    let mut sealer = Sealer::new(&key.kek, &ctx).context("cannot start sealing")?;
    drop(key);

    let mut input = open_input(&args.input)?;
    let len = input.metadata().map(|m| m.len()).unwrap_or(0);
    let mut out = TempOutput::new(&args.output)?;
    out.write(sealer.header())?;
    let bar = progress(len, "sealing");
    let mut buf = Zeroizing::new(vec![0u8; CHUNK]);
    let mut sealed = Vec::with_capacity(CHUNK + CHUNK / 8);
    loop {
        let n = read_some(&mut input, &mut buf, &args.input)?;
        if n == 0 {
            break;
        }
        sealed.clear();
        sealer.push(&buf[..n], &mut sealed)?;
        out.write(&sealed)?;
        bar.inc(n as u64);
    }
    sealed.clear();
    sealer.finish(&mut sealed)?;
    out.write(&sealed)?;
    out.commit()?;
    bar.finish_and_clear();
    report("sealed", &args.output, &ctx);
    Ok(())
}

pub fn decrypt(args: DecryptArgs) -> anyhow::Result<()> {
    let keys = args.files.source()?;
    let ring = keys.open()?;
    let mut input = open_input(&args.input)?;
    let len = input.metadata().map(|m| m.len()).unwrap_or(0);
    let what = |e: CryptoError| anyhow::Error::new(e).context(format!("{}", args.input.display()));

    // Read until the header parses: its length is only known from its own fields.
    let mut pending: Vec<u8> = Vec::with_capacity(CHUNK);
    let mut buf = vec![0u8; CHUNK];
    let header = loop {
        match Header::parse(&pending) {
            Ok(h) => break h,
            Err(e @ CryptoError::HeaderTruncated { .. }) => {
                let n = read_some(&mut input, &mut buf, &args.input)?;
                if n == 0 {
                    return Err(what(e));
                }
                pending.extend_from_slice(&buf[..n]);
            }
            Err(e) => return Err(what(e)),
        }
    };
    let ctx = header.context().clone();
    if let Some(expected) = args.tenant.as_ref().filter(|t| **t != ctx.tenant) {
        bail!(
            "{}: the object belongs to tenant {:?}, not {:?}",
            args.input.display(),
            ctx.tenant,
            expected
        );
    }
    let kek = match &ctx.external {
        None => ring
            .kek(&ctx.tenant, &ctx.key_id, ctx.key_version)
            .with_context(|| format!("{}: no key to open it", args.input.display()))?,
        Some(ext) => held_by_tenant(&keys, &ctx, ext)
            .with_context(|| format!("{}: no key to open it", args.input.display()))?,
    };
    let key = header.unlock(&kek).map_err(what)?;
    drop(kek);
    let mut opener = Opener::new(key);

    let mut out = TempOutput::new(&args.output)?;
    let bar = progress(len, "opening");
    let mut plain = Zeroizing::new(Vec::with_capacity(CHUNK + CHUNK / 8));
    let rest = pending.split_off(header.encoded_len());
    opener.push(&rest, &mut plain).map_err(what)?;
    out.write(&plain)?;
    plain.clear();
    loop {
        let n = read_some(&mut input, &mut buf, &args.input)?;
        if n == 0 {
            break;
        }
        opener.push(&buf[..n], &mut plain).map_err(what)?;
        out.write(&plain)?;
        plain.clear();
        bar.inc(n as u64);
    }
    opener.finish(&mut plain).map_err(what)?;
    out.write(&plain)?;
    out.commit()?;
    bar.finish_and_clear();
    report("opened", &args.output, &ctx);
    Ok(())
}

/// The object key of a hold-your-own-key object, unwrapped by the provider its header names
/// (`--config` says where that provider is). A revoked or deleted key is named here.
fn held_by_tenant(
    keys: &KeySource,
    ctx: &ObjectContext,
    ext: &ExternalKey,
) -> anyhow::Result<Zeroizing<[u8; 32]>> {
    let config = keys.config.as_ref().with_context(|| {
        format!(
            "its key is held by the tenant's key provider `{}`: name the gateway configuration with --config",
            ctx.key_id
        )
    })?;
    let cfg = config.keys.providers.get(&ctx.key_id).with_context(|| {
        format!(
            "its key is held by key provider `{}`, which {} does not configure",
            ctx.key_id,
            config.file.display()
        )
    })?;
    if ProviderKind::from_id(ext.provider) != Some(cfg.kind()) {
        bail!(
            "its key was wrapped by a provider of kind {:#04x}, but [key_providers.{}] is {}",
            ext.provider,
            ctx.key_id,
            cfg.kind().as_str()
        );
    }
    let context = external_key_context(&ctx.tenant, &ctx.object_id);
    keys.block_on(async {
        let p = provider::connect(cfg).await?;
        p.unwrap(&ext.blob, &context).await
    })
    .map_err(anyhow::Error::new)
}

/// One line on stderr naming what was written and under which key (never key bytes).
fn report(verb: &str, output: &Path, ctx: &ObjectContext) {
    eprintln!(
        "{verb} {} (tenant {}, key {} v{}, object id {})",
        output.display(),
        ctx.tenant,
        ctx.key_id,
        ctx.key_version,
        hex::encode(ctx.object_id)
    );
}

fn open_input(path: &Path) -> anyhow::Result<File> {
    File::open(path).with_context(|| format!("cannot read {}", path.display()))
}

fn read_some(input: &mut File, buf: &mut [u8], path: &Path) -> anyhow::Result<usize> {
    loop {
        match input.read(buf) {
            Ok(n) => return Ok(n),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
        }
    }
}

/// A progress bar on a terminal; nothing in pipes or logs.
fn progress(len: u64, what: &'static str) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(len);
    if let Ok(style) = ProgressStyle::with_template(
        "{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
    ) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_message(what);
    bar
}

/// Output that appears under its final name only through `commit`; dropped, it vanishes.
struct TempOutput {
    tmp: tempfile::NamedTempFile,
    dest: PathBuf,
}

impl TempOutput {
    fn new(dest: &Path) -> anyhow::Result<Self> {
        let dir = match dest.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        let tmp = tempfile::Builder::new()
            .prefix(".eugate-partial-")
            .tempfile_in(dir)
            .with_context(|| format!("cannot create a temporary file in {}", dir.display()))?;
        Ok(TempOutput {
            tmp,
            dest: dest.to_path_buf(),
        })
    }

    fn write(&mut self, bytes: &[u8]) -> anyhow::Result<()> {
        self.tmp
            .write_all(bytes)
            .with_context(|| format!("cannot write {}", self.tmp.path().display()))
    }

    fn commit(self) -> anyhow::Result<()> {
        self.tmp
            .as_file()
            .sync_all()
            .with_context(|| format!("cannot sync {}", self.tmp.path().display()))?;
        self.tmp
            .persist(&self.dest)
            .map_err(|e| e.error)
            .with_context(|| format!("cannot create {}", self.dest.display()))?;
        Ok(())
    }
}
