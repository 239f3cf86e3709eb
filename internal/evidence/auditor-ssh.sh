mkdir bundle
tar -xzf evidence.tar.gz -C bundle
cd bundle
sha256sum -c SHA256SUMS
ssh-keygen -Y verify -f allowed_signers -I "$(ssh-keygen -Y find-principals -f allowed_signers -s INDEX.json.sig)" -n groundzero.evidence/v1 -s INDEX.json.sig < INDEX.json
python3 verify.py
