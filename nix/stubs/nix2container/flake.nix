# Offline stand-in for nix2container (see ../README.md). buildImage and buildLayer take exactly the
# arguments of nlewo/nix2container's default.nix (no `...`), so a misspelt argument fails here as
# it would there; the results are stand-in derivations with the real passthru names.
{
  description = "Stub nix2container for evaluating todo-dapr's flake offline";

  # Like the real flake, it takes nixpkgs as an input; todo-dapr's flake makes it follow its own
  # (`inputs.nixpkgs.follows`), which the offline check thereby exercises. Resolved on its own,
  # this indirect reference fails at once (the check empties the flake registry).
  inputs.nixpkgs.url = "nixpkgs";

  outputs =
    { self, nixpkgs }:
    let
      forSystem =
        system:
        let
          pkgs = nixpkgs.legacyPackages.${system};
          inherit (pkgs.stubs) stubDerivation package;

          buildLayer =
            {
              deps ? [ ],
              copyToRoot ? null,
              ignore ? null,
              layers ? [ ],
              reproducible ? true,
              perms ? [ ],
              maxLayers ? 1,
              contents ? null,
              metadata ? {
                created_by = "nix2container";
              },
            }:
            stubDerivation "layers.json" {
              depsIn = toString deps;
              copyToRootIn = toString (if copyToRoot == null then [ ] else copyToRoot);
              passthru.nestedLayers = layers;
            };

          buildImage =
            {
              name,
              tag ? null,
              config ? { },
              layers ? [ ],
              copyToRoot ? null,
              fromImage ? null,
              arch ? "amd64",
              perms ? [ ],
              maxLayers ? 1,
              initializeNixDatabase ? false,
              nixUid ? 0,
              nixGid ? 0,
              created ? "0001-01-01T00:00:00Z",
              contents ? null,
              meta ? { },
            }:
            let
              # The config is written to a file, as the real function does: this forces every
              # value in it (the entrypoint's store path included) and fails on one JSON cannot
              # hold.
              configJson = builtins.toJSON config;
              # The real function writes an image JSON whose name is the image's name; a store
              # path name may not hold `/`, so the stub's file name takes the last component.
              baseName = builtins.baseNameOf name;
              image = stubDerivation "image-${baseName}.json" {
                inherit created configJson arch;
                imageNameIn = name;
                layersIn = toString layers;
                copyToRootIn = toString (if copyToRoot == null then [ ] else copyToRoot);
              };
              imageTag = if tag == null then builtins.substring 0 32 (baseNameOf image.outPath) else tag;
              copyScript = what: stubDerivation "copy-to-${what}" { imageIn = image.outPath; };
            in
            image
            // {
              inherit imageTag config arch;
              imageName = name;
              copyToDockerDaemon = copyScript "docker-daemon";
              copyToRegistry = copyScript "registry";
              copyToPodman = copyScript "podman";
              copyTo = copyScript "any";
            };
        in
        {
          nix2container = {
            inherit buildImage buildLayer;
          };
          skopeo-nix2container = package "skopeo-nix2container" "1.20.0";
        };
    in
    {
      packages = nixpkgs.lib.genAttrs [ "x86_64-linux" "aarch64-linux" ] forSystem;
    };
}
