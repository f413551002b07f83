//! The data side of an FTPS session: passive listeners, and the transfers over them (STOR
//! streams into an upload, RETR and listings stream out), each on its own TLS data connection.

use super::*;

impl Session {
    /// PASV (IPv4 only, as RFC 959 defines it) or EPSV: a fresh listener for the next transfer.
    pub(super) async fn pasv(&mut self, extended: bool) -> Reply {
        self.passive = None;
        let local = self.local.ip().to_canonical();
        let advertised = self.shared.passive_address.unwrap_or(local);
        let IpAddr::V4(v4) = advertised else {
            if !extended {
                return r(522, "PASV works only over IPv4; use EPSV");
            }
            return self.bind_passive(local, extended, None).await;
        };
        self.bind_passive(local, extended, Some(v4)).await
    }

    pub(super) async fn bind_passive(
        &mut self,
        local: IpAddr,
        extended: bool,
        v4: Option<std::net::Ipv4Addr>,
    ) -> Reply {
        let balancer = self.via.map(|b| b.ip());
        let Some(p) = self
            .shared
            .ports
            .bind(local, self.peer.ip(), balancer)
            .await
        else {
            return r(425, "no free passive port; try again shortly");
        };
        let port = p.port();
        self.passive = Some(p);
        match (extended, v4) {
            (false, Some(ip)) => {
                let o = ip.octets();
                r(
                    227,
                    format!(
                        "Entering Passive Mode ({},{},{},{},{},{})",
                        o[0],
                        o[1],
                        o[2],
                        o[3],
                        port >> 8,
                        port & 0xff
                    ),
                )
            }
            _ => r(229, format!("Entering Extended Passive Mode (|||{port}|)")),
        }
    }

    /// Reads the control connection while a transfer runs: returns at `ABOR` (after the
    /// transfer's own 426 reply; the caller's reply then answers the ABOR) or when the client
    /// hangs up. Other commands must wait for the transfer's end (RFC 959 allows only ABOR,
    /// STAT and QUIT here) and are refused.
    pub(super) async fn until_abort(&mut self) {
        loop {
            match self.lines.next(&mut self.control).await {
                Ok(Some(Line::Text(t))) if command::parse(&t) == Command::Abor => {
                    let _ = self
                        .send(
                            426,
                            "transfer aborted by ABOR; nothing stored by an aborted upload",
                        )
                        .await;
                    return;
                }
                Ok(Some(_)) => {
                    if self
                        .send(503, "a transfer is in progress; only ABOR is accepted now")
                        .await
                        .is_err()
                    {
                        return;
                    }
                }
                Ok(None) | Err(_) => return,
            }
        }
    }

    /// What every transfer needs: `PROT P` and a passive listener.
    pub(super) fn data_ready(&mut self) -> Result<Passive, Reply> {
        if !self.prot_p {
            self.passive = None;
            return Err(r(
                521,
                "data connections must be encrypted: send PBSZ 0 and PROT P first",
            ));
        }
        self.passive.take().ok_or_else(|| {
            r(
                425,
                "send PASV or EPSV first (active mode is not supported)",
            )
        })
    }

    pub(super) async fn open_data(
        &mut self,
        passive: Passive,
        what: &str,
    ) -> Result<data::DataStream, Reply> {
        self.send(150, &format!("opening TLS data connection for {what}"))
            .await
            .map_err(|e| r(426, e.to_string()))?;
        let reuse = self.shared.require_ssl_reuse.then_some(&self.tls_token[..]);
        data::open(
            passive,
            &self.shared.data_acceptor,
            self.shared.data_timeout,
            reuse,
        )
        .await
        .map_err(data_refusal)
    }

    pub(super) async fn stor(&mut self, who: &Principal, raw: &str) -> Reply {
        self.stor_reply = Some(super::super::StorReply::new(&self.shared));
        let passive = match self.data_ready() {
            Ok(p) => p,
            Err(e) => return e,
        };
        if std::mem::take(&mut self.rest) > 0 {
            return r(
                550,
                format!("resuming an upload (REST before STOR) is not supported: {SEALED}"),
            );
        }
        let joined = if raw.starts_with('/') {
            raw.to_string()
        } else {
            format!("{}/{raw}", self.cwd)
        };
        let path = match VirtualPath::parse_file(&joined) {
            Ok(p) => p,
            Err(e) => return r(553, e.to_string()),
        };
        let gw = self.shared.gateway.clone();
        let _slot = match gw.open_handle(who) {
            Ok(s) => s,
            Err(e) => return refusal(e),
        };
        let mode = WriteMode {
            create: true,
            truncate: true,
            exclusive: false,
            append: false,
        };
        // The residency decision comes before any byte: a refused upload never opens the data channel.
        let mut upload = match gw.open_upload(who, &path, mode).await {
            Ok(u) => u,
            Err(e) => return refusal(e),
        };
        let mut stream = match self.open_data(passive, &path.to_string()).await {
            Ok(s) => s,
            Err(e) => return e,
        };
        let timeout = self.shared.data_timeout;
        let received = tokio::select! {
            r = data::receive(&mut stream, &mut upload, timeout) => r,
            () = self.until_abort() => Err(DataError::Aborted),
        };
        let n = match received {
            Ok(n) => n,
            Err(e) => {
                // Dropping the upload aborts it in `transfer`: nothing is published.
                drop(upload);
                tracing::info!(user = %who.user, path = %path, error = %e, "FTPS upload aborted");
                return data_refusal(e);
            }
        };
        if let Err(e) = data::finish(stream, timeout).await {
            tracing::debug!(error = %e, "closing the data connection after an upload");
        }
        match upload.commit().await {
            Ok(_) => r(226, format!("transfer complete: {n} bytes stored")),
            Err(e) => {
                let (_, text) = refusal(e);
                r(451, format!("{text}; nothing was stored"))
            }
        }
    }

    pub(super) async fn retr(&mut self, who: &Principal, raw: &str) -> Reply {
        let passive = match self.data_ready() {
            Ok(p) => p,
            Err(e) => return e,
        };
        let offset = std::mem::take(&mut self.rest);
        let path = match self.resolve(raw) {
            Ok(p) => p,
            Err(e) => return e,
        };
        let gw = self.shared.gateway.clone();
        let _slot = match gw.open_handle(who) {
            Ok(s) => s,
            Err(e) => return refusal(e),
        };
        let mut download = match gw.open_download(who, &path).await {
            Ok(d) => d,
            Err(e) => return refusal(e),
        };
        if offset > download.len() {
            return r(
                554,
                format!(
                    "REST offset {offset} is beyond the end of the file ({} bytes)",
                    download.len()
                ),
            );
        }
        let mut stream = match self.open_data(passive, &path.to_string()).await {
            Ok(s) => s,
            Err(e) => return e,
        };
        let timeout = self.shared.data_timeout;
        let result = tokio::select! {
            r = data::send_download(&mut stream, &mut download, offset, timeout) => r,
            () = self.until_abort() => Err(DataError::Aborted),
        };
        match result {
            Ok(n) => match data::finish(stream, timeout).await {
                Ok(()) => r(226, format!("transfer complete: {n} bytes sent")),
                Err(e) => data_refusal(e),
            },
            Err(e) => data_refusal(e),
        }
    }

    pub(super) async fn list(
        &mut self,
        who: &Principal,
        raw: Option<String>,
        format: Format,
    ) -> Reply {
        self.rest = 0;
        let passive = match self.data_ready() {
            Ok(p) => p,
            Err(e) => return e,
        };
        let path = match raw
            .as_deref()
            .map(|p| self.resolve(p))
            .unwrap_or(Ok(self.cwd.clone()))
        {
            Ok(p) => p,
            Err(e) => return e,
        };
        let gw = self.shared.gateway.clone();
        // LIST of a file lists that file (MLSD of a file is an error, RFC 3659 7.2).
        let single = if path.is_root() {
            None
        } else {
            match gw.stat(who, &path).await {
                Ok(i) if i.is_dir => None,
                Ok(_) if format == Format::Facts => {
                    return r(501, "MLSD needs a directory; use MLST for a file");
                }
                Ok(i) => Some(i),
                Err(e) => return refusal(e),
            }
        };
        let _slot = match gw.open_handle(who) {
            Ok(s) => s,
            Err(e) => return refusal(e),
        };
        let mut listing = match single {
            Some(_) => None,
            None => match gw.open_dir(who, &path).await {
                Ok(l) => Some(l),
                Err(e) => return refusal(e),
            },
        };
        let mut stream = match self.open_data(passive, "the listing").await {
            Ok(s) => s,
            Err(e) => return e,
        };
        let timeout = self.shared.data_timeout;
        // ABOR first: a listing can be written whole in one poll (it fits the socket buffer),
        // and an ABOR already waiting must still stop it.
        let sent = tokio::select! {
            biased;
            () = self.until_abort() => Err(DataError::Aborted),
            r = send_listing(&mut stream, single.as_ref(), listing.as_mut(), format, timeout) => r,
        };
        if let Err(e) = sent {
            return data_refusal(e);
        }
        match data::finish(stream, timeout).await {
            Ok(()) => r(226, "listing sent"),
            Err(e) => data_refusal(e),
        }
    }
}

/// Writes a listing (one file's line, or a directory page by page) to the data connection.
async fn send_listing(
    stream: &mut data::DataStream,
    single: Option<&FileInfo>,
    mut listing: Option<&mut crate::transfer::DirListing>,
    format: Format,
    timeout: std::time::Duration,
) -> Result<(), DataError> {
    if let Some(i) = single {
        data::send(stream, format.line(i).as_bytes(), timeout).await?;
    }
    while let Some(l) = listing.as_deref_mut() {
        let Some(page) = l
            .next_page(PAGE_ENTRIES, PAGE_NAME_BYTES)
            .await
            .map_err(DataError::Transfer)?
        else {
            break;
        };
        let text: String = page.iter().map(|i| format.line(i)).collect();
        data::send(stream, text.as_bytes(), timeout).await?;
    }
    Ok(())
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Format {
    List,
    Names,
    Facts,
}

impl Format {
    fn line(self, i: &FileInfo) -> String {
        match self {
            Format::List => listing::list_line(i),
            Format::Names => listing::name_line(i),
            Format::Facts => format!("{}\r\n", listing::facts(i, &i.name)),
        }
    }
}
