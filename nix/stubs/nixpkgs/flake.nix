# Offline stand-in for nixpkgs (see ../README.md): `lib` and `legacyPackages.<system>` (x86_64-linux
# and aarch64-linux) with just the attributes todo-dapr's flake uses. Evaluates; builds nothing.
{
  description = "Stub nixpkgs for evaluating todo-dapr's flake offline";

  outputs =
    { self }:
    let
      lib = import ./lib.nix;
    in
    {
      inherit lib;
      legacyPackages = lib.genAttrs [ "x86_64-linux" "aarch64-linux" ] (
        system: import ./pkgs.nix { inherit lib system; }
      );
    };
}
