//! One of our services with its own sidecar, started and stopped together the way Kubernetes
//! runs them in one pod: the sidecar first (probing its app, as `dapr/dapr.yaml` and the chart
//! configure it), then the service, told where the sidecar listens.
//!
//! `cargo xtask up`, the consumers suite and the observability suite all run the services this
//! way; the fault tests reach into [`Pod::service`] and [`Pod::daprd`] to take one of the two
//! down on its own.

use std::path::PathBuf;

use anyhow::Context;

use crate::{AppHealthCheck, Daprd, Infra, Service, ServiceOptions, ports};

/// How to start a [`Pod`].
#[derive(Clone, Debug)]
pub struct PodOptions {
    /// The sidecar's app id, and the binary to run unless the `binary` field names another.
    pub app_id: String,
    /// The workspace binary; `None`: the app id.
    pub binary: Option<String>,
    /// Name of the service's log file (`<name>.log`) and of its sidecar's (`daprd-<name>.log`);
    /// replicas of one app need distinct names.
    pub log_name: String,
    /// The service's port; `None`: a free one.
    pub port: Option<u16>,
    /// The token daprd presents to the app and the app demands (`APP_API_TOKEN` on both).
    pub app_api_token: Option<String>,
    /// More environment for the service (on top of its port, `DAPR_HTTP_PORT` and the token).
    pub env: Vec<(String, String)>,
    /// Run this file instead of the workspace's debug build.
    pub binary_path: Option<PathBuf>,
    /// Own process groups, to outlive the terminal (`cargo xtask up --detach`).
    pub detached: bool,
}

impl PodOptions {
    /// A pod of `app_id`'s binary, logged under its name, on a free port, without a token.
    pub fn new(app_id: &str) -> Self {
        Self {
            app_id: app_id.to_owned(),
            binary: None,
            log_name: app_id.to_owned(),
            port: None,
            app_api_token: None,
            env: Vec::new(),
            binary_path: None,
            detached: false,
        }
    }

    fn binary(&self) -> &str {
        self.binary.as_deref().unwrap_or(&self.app_id)
    }

    /// The variable that carries the service's port: `BACKEND_PORT`, `EMAIL_DELIVERY_PORT`, …
    pub fn port_var(&self) -> String {
        format!("{}_PORT", self.binary().to_uppercase().replace('-', "_"))
    }
}

/// A running service and its sidecar; dropping it stops the service, then the sidecar.
#[derive(Debug)]
pub struct Pod {
    // Field order is drop order: the app goes before the sidecar it needs.
    /// The service process.
    pub service: Service,
    /// Its sidecar.
    pub daprd: Daprd,
}

impl Pod {
    /// Starts the sidecar, then the service; returns once the service answers `/healthz`.
    pub async fn start(infra: &Infra, opts: &PodOptions) -> anyhow::Result<Self> {
        let port = match opts.port {
            Some(port) => port,
            None => ports::free_port()?,
        };
        let daprd = infra
            .daprd(&opts.app_id, Some(port), |o| {
                o.app_api_token.clone_from(&opts.app_api_token);
                o.log_name = Some(format!("daprd-{}", opts.log_name));
                // A sidecar whose app died stops taking deliveries and job triggers, so the
                // other replicas (or a restart) get them.
                o.app_health = Some(AppHealthCheck::SERVICES);
            })
            .await?;
        let mut env = vec![
            (opts.port_var(), port.to_string()),
            ("DAPR_HTTP_PORT".to_owned(), daprd.http_port().to_string()),
        ];
        if let Some(token) = &opts.app_api_token {
            env.push(("APP_API_TOKEN".to_owned(), token.clone()));
        }
        env.extend(opts.env.iter().cloned());
        let service = Service::start(
            &ServiceOptions {
                binary: opts.binary().to_owned(),
                log_name: opts.log_name.clone(),
                port,
                env,
                binary_path: opts.binary_path.clone(),
            },
            infra.log_dir(),
            opts.detached,
        )
        .await
        .with_context(|| format!("starting {}", opts.log_name))?;
        Ok(Self { service, daprd })
    }

    /// The app id of the sidecar.
    pub fn app_id(&self) -> &str {
        self.daprd.app_id()
    }

    /// `SIGKILL` to both, as a node losing the pod would.
    pub fn kill(&mut self) {
        self.service.process_mut().kill();
        self.daprd.process_mut().kill();
    }

    /// Starts both again on the same ports and options, the sidecar first.
    pub async fn restart(&mut self, infra: &Infra) -> anyhow::Result<()> {
        self.daprd.restart(&infra.bins, infra.log_dir()).await?;
        self.service.restart(infra.log_dir()).await
    }

    /// Leaves both running; returns `(service PID, sidecar PID)`.
    pub fn detach(self) -> (Option<u32>, Option<u32>) {
        let Self { service, daprd } = self;
        (service.detach(), daprd.detach())
    }
}
