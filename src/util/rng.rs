//! The random generators of the book's Python libraries, for the places where the book's numbers
//! depend on them: one Mersenne Twister (MT19937) core, driven as NumPy drives it
//! ([`RandomState`]: pandas' `df.sample(random_state=123)` in chapter 6.2) and as libtorch's CPU
//! generator drives it ([`torch_randperm`]: `DataLoader(shuffle=True)` in appendix A).
//!
//! Both libraries seed MT19937 the same way (`init_genrand`) and read the same 32-bit outputs;
//! they differ only in how they turn those outputs into a permutation:
//!
//! | library | call | draw for position `i` |
//! |---|---|---|
//! | NumPy | `RandomState(seed).permutation(n)` | from the last position down, `j` uniform in `0..=i` by masked rejection |
//! | PyTorch | `torch.randperm(n, generator=torch.Generator().manual_seed(seed))` | from the first position up, `i + next_u32() % (n - i)` |
//!
//! Where no book number depends on the generator, the crate uses its own [`SplitMix64`] (the
//! data loaders' shuffles): one `u64` of state, the same stream on every machine and version.

/// The 32-bit Mersenne Twister MT19937 (Matsumoto and Nishimura), as NumPy's legacy
/// `RandomState` and libtorch's CPU generator run it: seeded with `init_genrand`, read 32 bits at
/// a time (`genrand_int32`).
#[derive(Debug, Clone)]
pub struct Mt19937 {
    state: Box<[u32; 624]>,
    index: usize,
}

impl Mt19937 {
    /// A generator seeded with `seed` (`init_genrand`).
    pub fn new(seed: u32) -> Self {
        let mut state = Box::new([0u32; 624]);
        state[0] = seed;
        for i in 1..624 {
            state[i] = 1_812_433_253u32.wrapping_mul(state[i - 1] ^ (state[i - 1] >> 30)).wrapping_add(i as u32);
        }
        Mt19937 { state, index: 624 }
    }

    /// The next 32 random bits (`genrand_int32`): regenerate the 624 words when they are used
    /// up, then temper the next one.
    pub fn next_u32(&mut self) -> u32 {
        if self.index >= 624 {
            for i in 0..624 {
                let y = (self.state[i] & 0x8000_0000) | (self.state[(i + 1) % 624] & 0x7fff_ffff);
                self.state[i] = self.state[(i + 397) % 624] ^ (y >> 1) ^ if y & 1 == 1 { 0x9908_b0df } else { 0 };
            }
            self.index = 0;
        }
        let mut y = self.state[self.index];
        self.index += 1;
        y ^= y >> 11;
        y ^= (y << 7) & 0x9d2c_5680;
        y ^= (y << 15) & 0xefc6_0000;
        y ^ (y >> 18)
    }
}

/// NumPy's legacy `np.random.RandomState(seed)`: the generator pandas'
/// `df.sample(..., random_state=123)` draws from, so that chapter 6's rows are the book's.
///
/// Only what `sample` uses is implemented: 32-bit draws, and [`RandomState::permutation`]
/// (`np.arange(n)` shuffled by NumPy's Fisher-Yates with masked rejection sampling).
#[derive(Debug, Clone)]
pub struct RandomState {
    mt: Mt19937,
}

impl RandomState {
    /// `np.random.RandomState(seed)` (the legacy seeding, `init_genrand`).
    pub fn new(seed: u32) -> Self {
        RandomState { mt: Mt19937::new(seed) }
    }

    /// The next 32 random bits (`genrand_int32`).
    pub fn next_u32(&mut self) -> u32 {
        self.mt.next_u32()
    }

    /// A uniform integer in `0..=max` (NumPy's `random_interval`: draw under the smallest
    /// all-ones mask that covers `max`, again until the value is at most `max`).
    fn interval(&mut self, max: u32) -> u32 {
        if max == 0 {
            return 0;
        }
        let mask = u32::MAX >> max.leading_zeros();
        loop {
            let value = self.next_u32() & mask;
            if value <= max {
                return value;
            }
        }
    }

    /// `RandomState.permutation(n)`: `0..n` shuffled from the last position down, as NumPy does.
    pub fn permutation(&mut self, n: usize) -> Vec<usize> {
        assert!(n <= u32::MAX as usize, "permutation of {n} items: NumPy's 32-bit path only");
        let mut order: Vec<usize> = (0..n).collect();
        for i in (1..n).rev() {
            let j = self.interval(i as u32) as usize;
            order.swap(i, j);
        }
        order
    }
}

/// `torch.randperm(n, generator=torch.Generator().manual_seed(seed))` on the CPU: a
/// Fisher-Yates shuffle (swapping `i` with `i + random() % (n - i)`) driven by libtorch's
/// 32-bit Mersenne Twister, which keeps the low 32 bits of the seed.
pub fn torch_randperm(n: usize, seed: u64) -> Vec<usize> {
    let mut rng = Mt19937::new(seed as u32);
    let mut perm: Vec<usize> = (0..n).collect();
    for i in 0..n.saturating_sub(1) {
        let z = rng.next_u32() as usize % (n - i);
        perm.swap(i, i + z);
    }
    perm
}

/// SplitMix64 (Steele, Lea, Flood 2014): a tiny, fast generator whose whole state is one u64,
/// so a seed gives the same shuffles on every machine and every version of this crate.
#[derive(Debug, Clone)]
pub struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    /// A generator seeded with `seed`.
    pub fn new(seed: u64) -> Self {
        SplitMix64 { state: seed }
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A uniform integer in `0..n` (n > 0), without modulo bias (Lemire's method).
    pub fn below(&mut self, n: u64) -> u64 {
        assert!(n > 0, "below(0)");
        loop {
            let m = (self.next_u64() as u128) * (n as u128);
            let low = m as u64;
            if low >= n.wrapping_neg() % n {
                return (m >> 64) as u64;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::util::device::{rng_lock, set_seed};
    use tch::{Device, Kind, Tensor};

    #[test]
    fn mersenne_twister_matches_the_reference_sequence() {
        // std::mt19937 with the default seed 5489: the first output is 3499211612, the second
        // 581869302, the 10000th 4123659995 (C++11 standard).
        let mut rng = Mt19937::new(5489);
        assert_eq!((rng.next_u32(), rng.next_u32()), (3_499_211_612, 581_869_302), "first outputs of mt19937(5489)");
        let last = (2..10_000).map(|_| rng.next_u32()).last().unwrap();
        assert_eq!(last, 4_123_659_995, "10000th output of mt19937(5489)");
    }

    #[test]
    fn random_state_is_numpys() {
        // np.random.RandomState(123).permutation(10), .permutation(4825)[:8] (NumPy 2.4).
        assert_eq!(RandomState::new(123).permutation(10), [4, 0, 7, 5, 8, 3, 1, 6, 9, 2]);
        assert_eq!(RandomState::new(123).permutation(4825)[..8], [3720, 3580, 4182, 3858, 4713, 3847, 2247, 1912]);
        assert_eq!(RandomState::new(123).permutation(1494)[..8], [263, 627, 887, 925, 1050, 587, 182, 1411]);
        let mut r = RandomState::new(5489);
        assert_eq!((r.next_u32(), r.next_u32()), (3_499_211_612, 581_869_302), "the same core as libtorch's");
    }

    #[test]
    fn randperm_matches_libtorch_with_the_same_seed() {
        let _rng = rng_lock();
        for (n, seed) in [(5usize, 5_278_339_153_051_796_802u64), (17, 123), (1, 7), (0, 1)] {
            set_seed(seed);
            let torch: Vec<i64> = Vec::try_from(Tensor::randperm(n as i64, (Kind::Int64, Device::Cpu))).unwrap();
            let ours: Vec<i64> = torch_randperm(n, seed).into_iter().map(|i| i as i64).collect();
            assert_eq!(ours, torch, "randperm({n}) with seed {seed}");
        }
    }
}
