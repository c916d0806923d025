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
      inherit (nixpkgs) lib;

      # Where the images are pushed: `<registry>/todo-dapr/<service>:<version>`, the chart's
      # `image.registry` (e.g. `fra.ocir.io/<tenancy-namespace>` for OCIR). An input of the
      # evaluation, read from TODO_DAPR_REGISTRY when given with `--impure`; otherwise
      # `todo-dapr.local`, the name the local cluster imports under, which resolves nowhere, so
      # an image never goes to a public registry by accident (docker.io/library/backend).
      # `cargo xtask images --registry` takes the same value.
      registryFromEnv = builtins.getEnv "TODO_DAPR_REGISTRY";
      registry = if registryFromEnv == "" then "todo-dapr.local" else registryFromEnv;

      # The services are Linux-only. x86_64-linux is built and checked on this project's machines;
      # aarch64-linux (OKE's Ampere A1 pools, Apple silicon under a Linux builder) is described by
      # the same expressions and evaluated offline, but not built here (README.md "Images").
      systems = {
        x86_64-linux = "amd64";
        aarch64-linux = "arm64";
      };

      perSystem =
        system: arch:
        let
          pkgs = nixpkgs.legacyPackages.${system};
          n2c = nix2container.packages.${system};
          rust = import ./nix/rust.nix {
            inherit pkgs;
            craneLib = crane.mkLib pkgs;
            root = ./.;
          };
          images = import ./nix/images.nix {
            inherit pkgs registry arch;
            inherit (rust) services version;
            nix2container = n2c.nix2container;
            skopeo = n2c.skopeo-nix2container;
          };
          manifests = import ./nix/manifests.nix {
            inherit pkgs;
            root = ./.;
          };
          devshell = import ./nix/devshell.nix { inherit pkgs; };
        in
        {
          packages = rust.services // {
            inherit images;
            inherit (manifests) dapr-manifests dashboards;
          };

          checks = rust.checks;

          # The toolchain the packages and checks are built with (crane's devShell adds cargo,
          # rustc, clippy and rustfmt, and the checks' build inputs), plus every tool the README's
          # commands and `cargo xtask` use (nix/devshell.nix).
          devShells.default = rust.craneLib.devShell (
            {
              checks = rust.checks;
              inherit (devshell) packages;
            }
            // devshell.env
          );
        };

      outputs = lib.mapAttrs perSystem systems;
    in
    {
      packages = lib.mapAttrs (_: o: o.packages) outputs;
      checks = lib.mapAttrs (_: o: o.checks) outputs;
      devShells = lib.mapAttrs (_: o: o.devShells) outputs;
    };
}
