mkdir bundle
tar -xzf evidence.tar.gz -C bundle
cd bundle
sha256sum -c SHA256SUMS
gpg --import repo/governance/keys/*.asc
gpg --verify INDEX.json.asc INDEX.json
python3 verify.py
