# One OCI image per service with nix2container, and `packages.images`: the four as OCI layouts.
#
# Layout rules (the same as `cargo xtask images`): only the binary's runtime closure, a non-root
# numeric user, a fixed creation time, the binary as the entrypoint, and the shared runtime
# libraries in a layer of their own. Named `<registry>/todo-dapr/<service>` and tagged with the
# workspace version, the reference the chart pulls by default (`image.registry` +
# `services.<svc>.image.repository` + the chart's appVersion).
{
  pkgs,
  services,
  version,
  registry,
  # The OCI architecture of the binaries: `amd64` or `arm64` (the system the flake builds for).
  arch,
  nix2container,
  skopeo,
}:
let
  inherit (pkgs) lib;

  # Fixed, so the image config (and with it the digest) depends on the contents only. One second
  # after the epoch rather than nix2container's default year 1: some registries and UIs reject or
  # mis-sort year-1 timestamps.
  created = "1970-01-01T00:00:01Z";

  # The user the entrypoint runs as. Numeric in the config so Kubernetes' runAsNonRoot can verify
  # it without reading /etc/passwd; the passwd/group entries only give the id a name.
  uid = "65532";
  userFiles = pkgs.runCommand "todo-dapr-nonroot-user" { } ''
    mkdir -p $out/etc
    echo "nonroot:x:${uid}:${uid}:nonroot:/nonexistent:/sbin/nologin" > $out/etc/passwd
    echo "nonroot:x:${uid}:" > $out/etc/group
  '';

  # What a crane-built Rust binary links against: glibc and libgcc_s (unwinding). The same layer
  # (same store paths, same digest) in all four images, so a node or a registry stores it once and
  # a service update ships only its own layer. Anything else the binary references lands in the
  # service's own layer, so a mismatch here costs size, never correctness.
  runtimeLayer = nix2container.buildLayer {
    deps = [
      pkgs.stdenv.cc.libc
      pkgs.stdenv.cc.cc.lib
    ];
  };

  mkImage =
    service: package:
    nix2container.buildImage {
      name = "${registry}/todo-dapr/${service}";
      # The chart's default tag. Builds are reproducible, so the digest pins an exact image when
      # the same version is rebuilt (`services.<svc>.image.digest`).
      tag = version;
      inherit created arch;
      layers = [ runtimeLayer ];
      # The service layer: the binary and whatever of its closure the runtime layer lacks, plus
      # the user entries. No shell, no coreutils, no CA bundle (TLS roots are compiled in).
      copyToRoot = [ userFiles ];
      config = {
        Entrypoint = [ (lib.getExe package) ];
        User = "${uid}:${uid}";
        WorkingDir = "/";
        Labels = {
          "org.opencontainers.image.title" = service;
          "org.opencontainers.image.version" = version;
        };
      };
    };

  serviceImages = lib.mapAttrs mkImage services;
in
# `nix build .#images` gives result/<service>/, an OCI layout (index.json, blobs/) holding the
# service's image under its version tag: what skopeo, umoci and oci-image-tool read. To push one
# image to its registry: `nix run .#images.backend.copyToRegistry` (the images are in passthru;
# README.md "Images" sets the registry).
pkgs.runCommand "todo-dapr-images-${version}"
  {
    nativeBuildInputs = [ skopeo ];
    passthru = serviceImages;
  }
  ''
    # No /etc/containers/policy.json in the build sandbox; the sources are our own store paths.
    export HOME=$TMPDIR
    mkdir -p $out
    ${lib.concatStrings (
      lib.mapAttrsToList (name: image: ''
        skopeo --insecure-policy copy nix:${image} oci:$out/${name}:${image.imageTag}
      '') serviceImages
    )}
  ''
