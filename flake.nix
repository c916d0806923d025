{
  description = "todo-dapr: the four services, their OCI images, the Dapr manifests, the Grafana dashboards, a dev shell and the CI checks";

  inputs = {
    # The toolchain comes from nixpkgs itself (no rust-overlay/fenix input): one pin decides the
    # compiler for the packages, the checks and the dev shell. nix/rust.nix refuses a nixpkgs whose
    # rustc is older than the workspace's `rust-version`.
    nixpkgs.url = "github:NixOS/nixpkgs/nixos-unstable";
    # Crane builds the dependency graph once (buildDepsOnly) and reuses it for every package and
    # check. It has no inputs of its own: it takes our nixpkgs through `mkLib`.
    crane.url = "github:ipetkov/crane";
    # nix2container writes images without a tarball in the store, layers from store paths, and a
    # skopeo that reads them (`nix:` transport) to copy them to OCI layouts and registries.
    nix2container = {
      url = "github:nlewo/nix2container";
      inputs.nixpkgs.follows = "nixpkgs";
    };
  };

  # Offline CI (`cargo xtask test`, xtask/src/nix_check.rs) evaluates these outputs with the
  # three inputs replaced by the small local flakes in nix/stubs/; see nix/stubs/README.md.
  outputs =
    {
      self,
      nixpkgs,
      crane,
      nix2container,
    }:
    let
      # The images run on amd64 Linux nodes (Minikube, OKE); the services are Linux-only anyway.
      system = "x86_64-linux";
      pkgs = nixpkgs.legacyPackages.${system};
      n2c = nix2container.packages.${system};

      rust = import ./nix/rust.nix {
        inherit pkgs;
        craneLib = crane.mkLib pkgs;
        root = ./.;
      };
      images = import ./nix/images.nix {
        inherit pkgs;
        inherit (rust) services version;
        nix2container = n2c.nix2container;
        skopeo = n2c.skopeo-nix2container;
      };
      manifests = import ./nix/manifests.nix {
        inherit pkgs;
        root = ./.;
      };
    in
    {
      packages.${system} = rust.services // {
        inherit images;
        inherit (manifests) dapr-manifests dashboards;
      };

      checks.${system} = rust.checks;

      # The toolchain the packages and checks are built with (crane's devShell adds cargo, rustc,
      # clippy and rustfmt, and the checks' build inputs), plus the tools the README uses.
      devShells.${system}.default = rust.craneLib.devShell {
        checks = self.checks.${system};
        packages = with pkgs; [
          cargo-nextest
          sqlx-cli
          dapr-cli
          postgresql
          redis
          prometheus
          kubectl
          kubernetes-helm
          skopeo
        ];
      };
    };
}
